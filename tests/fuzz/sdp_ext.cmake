# Header extension map of the relay's answer and its use on packets (fuzz_sdp_ext.c).
if(TARGET spk_relay_core)
  spk_add_fuzz(sdp_ext LIBS spk_relay_core)
endif()
