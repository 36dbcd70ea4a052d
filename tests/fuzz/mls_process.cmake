# MLS messages processed by a live group member (fuzz_mls_process.c). The member's state and the
# seed corpus come from mls_process_gen, built from the same file:
#   mls_process_gen tests/fuzz/mls_process_state.h tests/fuzz/corpus/mls_process
# (regenerate both together: the seeds authenticate only against that state).
spk_add_fuzz(mls_process LIBS spk_mls)
add_executable(mls_process_gen fuzz_mls_process.c)
target_compile_definitions(mls_process_gen PRIVATE SPK_MLS_PROCESS_GENERATE)
target_link_libraries(mls_process_gen PRIVATE spk_mls spk_warnings)
