#!/usr/bin/env bash
# The test command (README.md): install what is missing, check the format,
# build both crypto flavours and a sanitizer build, and run every test through ctest
# (then the unit tests under valgrind and the fuzz targets for a bounded time).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

bash scripts/deps.sh

echo "== format (clang-format 14, .clang-format)"
mapfile -t srcs < <(git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' -not -path './build*')
clang-format --dry-run --Werror "${srcs[@]}"

echo "== build: BoringSSL + curl/GnuTLS (default)"
bash scripts/build.sh "$top/build"
echo "== build: OpenSSL 3 + curl/OpenSSL"
bash scripts/build.sh "$top/build-openssl" -DCF_CRYPTO=openssl

echo "== tests: OpenSSL build, unit tests"
ctest --test-dir "$top/build-openssl" -L unit --output-on-failure
echo "== tests: default build, all tests"
ctest --test-dir "$top/build" --output-on-failure

echo "== build: ASan + UBSan"
bash scripts/build.sh "$top/build-asan" -DCF_SANITIZE=ON
echo "== tests: ASan + UBSan build, all tests"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir "$top/build-asan" --output-on-failure

echo "== tests: default build, unit tests under valgrind (memcheck; leaks are errors)"
ctest --test-dir "$top/build" -L unit -T memcheck -j"$(nproc)" --output-on-failure \
    --overwrite MemoryCheckCommand="$(command -v valgrind)" \
    --overwrite "MemoryCheckCommandOptions=--leak-check=full --error-exitcode=1"

echo "== build: libFuzzer targets (clang, ASan + UBSan)"
bash scripts/build.sh "$top/build-fuzz" -DFUZZ=ON -DCF_TESTS=OFF -DCMAKE_C_COMPILER=clang
echo "== tests: fuzz targets, ${CF_FUZZ_SECONDS:-20} s each on their seed corpora"
ctest --test-dir "$top/build-fuzz/tests/fuzz" -L fuzz -j"$(nproc)" --output-on-failure
