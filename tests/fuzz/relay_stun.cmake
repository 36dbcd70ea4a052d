# STUN on the relay's receive fast path (relay/src/relay_stun.h), before libnice sees it.
if(TARGET spk_relay)
  spk_add_fuzz(relay_stun LIBS spk_relay)
  target_include_directories(fuzz_relay_stun_replay PRIVATE ${PROJECT_SOURCE_DIR}/relay/src)
  if(SPK_FUZZ)
    target_include_directories(relay_stun_fuzzer PRIVATE ${PROJECT_SOURCE_DIR}/relay/src)
  endif()
endif()
