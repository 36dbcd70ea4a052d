# System dependencies, found through pkg-config. Nothing is downloaded during configure.
find_package(PkgConfig REQUIRED)
pkg_check_modules(UV REQUIRED IMPORTED_TARGET libuv)
pkg_check_modules(LWS REQUIRED IMPORTED_TARGET libwebsockets)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)
pkg_check_modules(SQLITE REQUIRED IMPORTED_TARGET sqlite3)
pkg_check_modules(OPENSSL REQUIRED IMPORTED_TARGET openssl)
pkg_check_modules(CMOCKA IMPORTED_TARGET cmocka)
find_package(Threads REQUIRED)
pkg_check_modules(NICE REQUIRED IMPORTED_TARGET nice)

# libsrtp2 built against OpenSSL by scripts/setup-libsrtp.sh into .deps/libsrtp (static).
set(SPK_SRTP_PREFIX "${CMAKE_SOURCE_DIR}/.deps/libsrtp" CACHE PATH "libsrtp2 (OpenSSL build) prefix")
find_library(SPK_SRTP_LIBRARY NAMES libsrtp2.a PATHS ${SPK_SRTP_PREFIX}/lib NO_DEFAULT_PATH)
find_path(SPK_SRTP_INCLUDE_DIR srtp2/srtp.h PATHS ${SPK_SRTP_PREFIX}/include NO_DEFAULT_PATH)
if(NOT SPK_SRTP_LIBRARY OR NOT SPK_SRTP_INCLUDE_DIR)
  message(FATAL_ERROR "libsrtp2 (OpenSSL build) not found in ${SPK_SRTP_PREFIX}: run scripts/setup.sh")
endif()
