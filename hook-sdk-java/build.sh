#!/usr/bin/env bash
# Compiles the Java hook client (library, conformance app, examples) with javac only.
# OUT (default: <repo>/.tmp/java/classes) receives the classes.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
OUT="${OUT:-$root/.tmp/java/classes}"

mkdir -p "$OUT"
rm -rf "$OUT/dev/cryo/hooks" # stale classes of deleted sources; nothing else in OUT is touched

sources="$(mktemp)"
trap 'rm -f "$sources"' EXIT
find "$here/src/main/java" "$here/src/conformance/java" "$here/examples" -name '*.java' | sort | sed 's/.*/"&"/' >"$sources"

javac -J-XX:TieredStopAtLevel=1 -J-XX:+UseSerialGC --release 17 -Xlint:all -Werror -encoding UTF-8 -d "$OUT" @"$sources"

cat <<MSG
compiled $(wc -l <"$sources") sources into $OUT
  conformance app: java -cp "$OUT" dev.cryo.hooks.conformance.ConformanceApp
  example:         java -cp "$OUT" dev.cryo.hooks.examples.HttpServerExample 8080
MSG
