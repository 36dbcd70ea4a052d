# Interface target carrying warnings and sanitizer flags; every project target links it.
add_library(spk_warnings INTERFACE)
target_compile_options(spk_warnings INTERFACE
  -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes
  -Wno-unused-parameter -Wvla -Wpointer-arith -Wundef)
if(SPK_WERROR)
  target_compile_options(spk_warnings INTERFACE -Werror)
endif()
if(SPK_SANITIZE)
  target_compile_options(spk_warnings INTERFACE -fsanitize=${SPK_SANITIZE} -fno-omit-frame-pointer
    -fno-sanitize-recover=all)
  target_link_options(spk_warnings INTERFACE -fsanitize=${SPK_SANITIZE})
endif()
if(SPK_FUZZ)
  # Instrument everything for coverage; fuzz executables add -fsanitize=fuzzer themselves.
  target_compile_options(spk_warnings INTERFACE -fsanitize=fuzzer-no-link)
endif()

# Hardening, in every build: stack protector and stack-clash checks, control-flow protection
# where the target has it, position-independent executables, full RELRO and a non-executable
# stack; _FORTIFY_SOURCE where the optimizer runs (it needs -O1 or more) and no sanitizer
# stands in for it.
include(CheckCCompilerFlag)
include(CheckPIESupported)
check_pie_supported()
target_compile_options(spk_warnings INTERFACE -fstack-protector-strong)
check_c_compiler_flag(-fstack-clash-protection SPK_HAVE_STACK_CLASH_PROTECTION)
if(SPK_HAVE_STACK_CLASH_PROTECTION)
  target_compile_options(spk_warnings INTERFACE -fstack-clash-protection)
endif()
check_c_compiler_flag(-fcf-protection SPK_HAVE_CF_PROTECTION)
if(SPK_HAVE_CF_PROTECTION)
  target_compile_options(spk_warnings INTERFACE -fcf-protection)
endif()
target_link_options(spk_warnings INTERFACE -Wl,-z,relro -Wl,-z,now -Wl,-z,noexecstack)
if(NOT SPK_SANITIZE AND NOT SPK_FUZZ)
  target_compile_options(spk_warnings INTERFACE
    $<$<NOT:$<CONFIG:Debug>>:-U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=2>)
endif()
