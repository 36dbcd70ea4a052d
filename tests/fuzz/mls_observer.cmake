# MLS messages processed by the delivery service's observer of a live group
# (fuzz_mls_observer.c). The observer's state and the seed corpus come from mls_observer_gen,
# built from the same file (regenerate both together: the seeds are valid only for that state):
#   mls_observer_gen tests/fuzz/mls_observer_state.h tests/fuzz/corpus/mls_observer
if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/mls_observer_state.h)
  spk_add_fuzz(mls_observer LIBS spk_mls)
endif()
add_executable(mls_observer_gen fuzz_mls_observer.c)
target_compile_definitions(mls_observer_gen PRIVATE SPK_MLS_OBSERVER_GENERATE)
target_link_libraries(mls_observer_gen PRIVATE spk_mls spk_warnings)
