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
