# The delivery service: chat.* and mls.* requests into the signaling core with a real store and a
# live group (fuzz_chat.c; fuzz_chat_gen writes its seeds: fuzz_chat_gen tests/fuzz/corpus/chat),
# and KeyPackage validation as the service does it on upload (fuzz_key_package.c; seeds from
# node tests/fuzz/key_package_seeds.mjs tests/fuzz/corpus/key_package).
if(TARGET spk_signaling)
  spk_add_fuzz(chat LIBS spk_signaling spk_mls PkgConfig::JANSSON)
  add_executable(fuzz_chat_gen fuzz_chat.c)
  target_compile_definitions(fuzz_chat_gen PRIVATE SPK_FUZZ_CHAT_GENERATE)
  target_link_libraries(fuzz_chat_gen PRIVATE spk_signaling spk_mls PkgConfig::JANSSON spk_warnings)
  spk_add_fuzz(key_package LIBS spk_signaling spk_mls PkgConfig::JANSSON)
  target_include_directories(fuzz_key_package_replay PRIVATE ${CMAKE_SOURCE_DIR}/signaling/src)
  if(SPK_FUZZ)
    target_include_directories(key_package_fuzzer PRIVATE ${CMAKE_SOURCE_DIR}/signaling/src)
  endif()
endif()
