if(TARGET spk_signaling)
  spk_add_fuzz(bus LIBS spk_signaling)
endif()
