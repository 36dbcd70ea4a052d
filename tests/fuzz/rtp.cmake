if(TARGET spk_relay_core)
  spk_add_fuzz(rtp LIBS spk_relay_core)
endif()
