#!/bin/sh
# Build every tests/fuzz/fuzz_<name>.c with libFuzzer, ASan and UBSan
# against the library sources, then run each for SECONDS (default 20) on a
# copy of its seed corpus tests/fuzz/corpus/<name>/.  Exits non-zero when
# a build fails or any target finds a crash, a leak or a timeout; the
# input that did it is kept in build-fuzz/artifacts/<name>/.
#
#   sh tests/fuzz/run.sh [SECONDS]      FUZZ_ONLY="imap_parser mutf7" to pick
set -u
cd "$(dirname "$0")/../.." || exit 1

secs=${1:-20}
cc=${FUZZ_CC:-clang}
out=build-fuzz
pkgs="openssl libevent libevent_openssl libevent_pthreads sqlite3 yaml-0.1 libsystemd libcurl jansson"
pkg_cflags=$(pkg-config --cflags $pkgs) || exit 1
pkg_libs=$(pkg-config --libs $pkgs) || exit 1
cflags="-g -O1 -std=gnu11 -fno-omit-frame-pointer -Ilib $pkg_cflags"
# UBSan findings must stop the run, or libFuzzer would not count them.
san="-fsanitize=address,undefined -fno-sanitize-recover=all"

# The library, compiled once per run into an archive: targets link only
# the objects they use.
mkdir -p "$out/lib" || exit 1
objs=""
for src in lib/*/*.c; do
	obj="$out/${src%.c}.o"
	mkdir -p "$(dirname "$obj")"
	if ! $cc $cflags $san -fsanitize=fuzzer-no-link -c -o "$obj" "$src"; then
		echo "fuzz: cannot compile $src" >&2
		exit 1
	fi
	objs="$objs $obj"
done
rm -f "$out/libmailstow-fuzz.a"
ar rcs "$out/libmailstow-fuzz.a" $objs || exit 1

status=0
for src in tests/fuzz/fuzz_*.c; do
	[ -e "$src" ] || continue
	name=$(basename "$src" .c)
	name=${name#fuzz_}
	if [ -n "${FUZZ_ONLY:-}" ]; then
		case " $FUZZ_ONLY " in *" $name "*) ;; *) continue ;; esac
	fi
	bin="$out/fuzz_$name"
	if ! $cc $cflags -fsanitize=fuzzer,address,undefined \
	    -fno-sanitize-recover=all -o "$bin" "$src" \
	    "$out/libmailstow-fuzz.a" $pkg_libs -lpthread; then
		echo "fuzz $name: BUILD FAILED"
		status=1
		continue
	fi
	corpus="$out/corpus/$name"
	art="$out/artifacts/$name"
	rm -rf "$corpus" "$art"
	mkdir -p "$corpus" "$art"
	if [ -d "tests/fuzz/corpus/$name" ]; then
		cp -R "tests/fuzz/corpus/$name/." "$corpus/"
	fi
	log="$out/fuzz_$name.log"
	if "$bin" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
	    -print_final_stats=1 -artifact_prefix="$art/" "$corpus" \
	    >"$log" 2>&1; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
		echo "fuzz $name: ok, ${runs:-?} runs in ${secs}s"
	else
		echo "fuzz $name: FAILED, see $log"
		grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error)' "$log" | head -5
		ls "$art" | sed "s|^|  input: $art/|"
		status=1
	fi
done
exit $status
