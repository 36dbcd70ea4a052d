# The fast path for flat requests (signaling/src/json_flat.c) against jansson's parser.
if(TARGET spk_signaling)
  spk_add_fuzz(json_flat LIBS spk_signaling)
  target_include_directories(fuzz_json_flat_replay PRIVATE ${CMAKE_SOURCE_DIR}/signaling/src)
  if(SPK_FUZZ)
    target_include_directories(json_flat_fuzzer PRIVATE ${CMAKE_SOURCE_DIR}/signaling/src)
  endif()
endif()
