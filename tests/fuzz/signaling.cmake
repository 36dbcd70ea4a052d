if(TARGET spk_signaling)
  spk_add_fuzz(signaling LIBS spk_signaling)
endif()
