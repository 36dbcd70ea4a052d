# Header values a client or a proxy sends that the transport parses: X-Forwarded-For style
# lists, Origin, Host (fuzz_ws_addr.c; the parsers are in signaling/src/ws_addr.c).
if(TARGET spk_signaling)
  spk_add_fuzz(ws_addr LIBS spk_signaling)
  target_include_directories(fuzz_ws_addr_replay PRIVATE ${CMAKE_SOURCE_DIR}/signaling/src)
  if(SPK_FUZZ)
    target_include_directories(ws_addr_fuzzer PRIVATE ${CMAKE_SOURCE_DIR}/signaling/src)
  endif()
endif()
