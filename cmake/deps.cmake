# Dependencies, all from Debian's packages. DESIGN.md §6: BoringSSL's
# unversioned symbols clash with OpenSSL 3 in one process, so the BoringSSL
# build may only share the process with curl's GnuTLS build; the OpenSSL
# build uses OpenSSL 3 with curl's OpenSSL build. A wrong combination is
# refused here, and again at run time by `certfleet version`.
find_package(PkgConfig REQUIRED)
pkg_check_modules(UV REQUIRED IMPORTED_TARGET libuv>=1.44)
pkg_check_modules(CARES REQUIRED IMPORTED_TARGET libcares>=1.18)
pkg_check_modules(LMDB REQUIRED IMPORTED_TARGET lmdb)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson>=2.14)
pkg_check_modules(PSL REQUIRED IMPORTED_TARGET libpsl)
pkg_check_modules(IDN2 REQUIRED IMPORTED_TARGET libidn2)

find_program(OBJDUMP_EXE objdump REQUIRED)
execute_process(COMMAND ${CMAKE_C_COMPILER} -print-multiarch OUTPUT_VARIABLE CF_MULTIARCH
                OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT CF_MULTIARCH)
    set(CF_MULTIARCH "x86_64-linux-gnu")
endif()

# cf_needed(<lib> <var>): the DT_NEEDED entries of a shared library.
function(cf_needed lib var)
    execute_process(COMMAND ${OBJDUMP_EXE} -p ${lib} OUTPUT_VARIABLE dump RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "cannot read ${lib} with objdump")
    endif()
    string(REGEX MATCHALL "NEEDED +[^\n]+" needed "${dump}")
    set(${var} "${needed}" PARENT_SCOPE)
endfunction()

add_library(cf_crypto_lib INTERFACE)
add_library(cf_curl_lib INTERFACE)

if(CF_CRYPTO STREQUAL "boringssl")
    find_path(BORINGSSL_INCLUDE_DIR openssl/base.h PATHS /usr/include/android NO_DEFAULT_PATH)
    find_library(BORINGSSL_CRYPTO_LIB NAMES crypto
                 PATHS /usr/lib/${CF_MULTIARCH}/android NO_DEFAULT_PATH)
    if(NOT BORINGSSL_INCLUDE_DIR OR NOT BORINGSSL_CRYPTO_LIB)
        message(FATAL_ERROR "BoringSSL not found: apt-get install android-libboringssl-dev")
    endif()
    get_filename_component(BORINGSSL_LIB_DIR ${BORINGSSL_CRYPTO_LIB} DIRECTORY)
    # BoringSSL's headers must come before /usr/include, where OpenSSL's may be.
    target_include_directories(cf_crypto_lib BEFORE INTERFACE ${BORINGSSL_INCLUDE_DIR})
    target_link_libraries(cf_crypto_lib INTERFACE ${BORINGSSL_CRYPTO_LIB})
    # No pkg-config file and a private directory: a RUNPATH finds the library.
    target_link_options(cf_crypto_lib INTERFACE "LINKER:-rpath,${BORINGSSL_LIB_DIR}"
                        "LINKER:--enable-new-dtags")
    target_compile_definitions(cf_crypto_lib INTERFACE CF_CRYPTO_BORINGSSL=1
                               CF_CRYPTO_LIB_HINT="${BORINGSSL_LIB_DIR}/libcrypto")

    find_library(CURL_LIB NAMES curl-gnutls)
    if(NOT CURL_LIB)
        message(FATAL_ERROR "curl's GnuTLS build not found: apt-get install libcurl4-gnutls-dev "
                            "(the OpenSSL build of libcurl cannot share a process with BoringSSL)")
    endif()
    set(CF_CURL_TLS_EXPECTED "GnuTLS")
else()
    if(NOT CF_CRYPTO STREQUAL "openssl")
        message(FATAL_ERROR "CF_CRYPTO must be boringssl or openssl, not '${CF_CRYPTO}'")
    endif()
    find_package(OpenSSL 3.0 REQUIRED)
    target_link_libraries(cf_crypto_lib INTERFACE OpenSSL::Crypto)
    target_compile_definitions(cf_crypto_lib INTERFACE CF_CRYPTO_OPENSSL=1
                               CF_CRYPTO_LIB_HINT="libcrypto.so.3")
    # curl's OpenSSL build: the runtime library of Debian's libcurl4 package.
    # Its headers are the same as the GnuTLS build's, so either -dev package
    # provides them.
    find_library(CURL_LIB NAMES libcurl.so.4 curl)
    if(NOT CURL_LIB)
        message(FATAL_ERROR "curl's OpenSSL build not found: apt-get install libcurl4")
    endif()
    set(CF_CURL_TLS_EXPECTED "OpenSSL")
endif()

find_path(CURL_INCLUDE_DIR curl/curl.h)
if(NOT CURL_INCLUDE_DIR)
    message(FATAL_ERROR "curl headers not found: apt-get install libcurl4-gnutls-dev")
endif()
get_filename_component(CURL_LIB_REAL ${CURL_LIB} REALPATH)
cf_needed(${CURL_LIB_REAL} CURL_NEEDED)
if(CF_CRYPTO STREQUAL "boringssl" AND CURL_NEEDED MATCHES "libssl\\.so")
    message(FATAL_ERROR "${CURL_LIB_REAL} is curl's OpenSSL build; with BoringSSL it crashes at "
                        "the first TLS handshake. Use libcurl4-gnutls-dev, or -DCF_CRYPTO=openssl.")
endif()
if(CF_CRYPTO STREQUAL "openssl" AND NOT CURL_NEEDED MATCHES "libssl\\.so\\.3")
    message(FATAL_ERROR "${CURL_LIB_REAL} is not curl's OpenSSL 3 build, which -DCF_CRYPTO=openssl "
                        "needs (apt-get install libcurl4)")
endif()
target_include_directories(cf_curl_lib INTERFACE ${CURL_INCLUDE_DIR})
target_link_libraries(cf_curl_lib INTERFACE ${CURL_LIB})
target_compile_definitions(cf_curl_lib INTERFACE CF_CURL_TLS_EXPECTED="${CF_CURL_TLS_EXPECTED}")
message(STATUS "certfleet: crypto ${CF_CRYPTO}, curl ${CURL_LIB_REAL} (${CF_CURL_TLS_EXPECTED})")
