# SFrame headers and frames decrypted by an SFrame context and by MLS-derived keys
# (fuzz_sframe.c). The keys are fixed, so the seed corpus stays valid; sframe_gen, built from
# the same file, writes it: sframe_gen tests/fuzz/corpus/sframe
spk_add_fuzz(sframe LIBS spk_sframe)
add_executable(sframe_gen fuzz_sframe.c)
target_compile_definitions(sframe_gen PRIVATE SPK_SFRAME_FUZZ_GENERATE)
target_link_libraries(sframe_gen PRIVATE spk_sframe spk_warnings)
