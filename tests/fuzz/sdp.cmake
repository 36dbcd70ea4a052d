if(TARGET spk_relay_core)
  spk_add_fuzz(sdp LIBS spk_relay_core)
endif()
