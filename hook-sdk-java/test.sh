#!/usr/bin/env bash
# Runs the client's unit tests (src/test/java, JUnit 5) against the jar build.sh makes, offline:
# javac, and the JUnit console launcher of Debian's junit5 package (JUNIT_CONSOLE_JAR names
# another). The tests sit in the package dev.cryo.hooks to reach its internals, so the jar goes
# on the class path. Arguments go to the launcher (e.g. --select-class dev.cryo.hooks.JsonTest
# instead of the whole scan).
# BUILD (default: <repo>/.tmp/java/unit) receives a build of its own (the conformance suite may be
# building .tmp/java/classes at the same time), the test classes and the XML report
# (reports/TEST-junit-jupiter.xml).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
BUILD="${BUILD:-$root/.tmp/java/unit}"
JUNIT_CONSOLE_JAR="${JUNIT_CONSOLE_JAR:-/usr/share/java/junit-platform-console-standalone.jar}"

if [ ! -f "$JUNIT_CONSOLE_JAR" ]; then
  echo "test.sh: no JUnit 5 console launcher at $JUNIT_CONSOLE_JAR: apt-get install junit5, or set JUNIT_CONSOLE_JAR" >&2
  exit 2
fi

version="$(bash "$here/build.sh" --version)"
OUT="$BUILD/classes" bash "$here/build.sh" >/dev/null
jar="$BUILD/cryo-hooks-$version.jar"

rm -rf "$BUILD/test-classes" "$BUILD/reports"
sources="$BUILD/test-sources"
find "$here/src/test/java" -name '*.java' | sort | sed 's/.*/"&"/' >"$sources"
javac -J-XX:TieredStopAtLevel=1 -J-XX:+UseSerialGC --release 17 -Xlint:all -Werror -encoding UTF-8 \
  --class-path "$jar:$JUNIT_CONSOLE_JAR" -d "$BUILD/test-classes" @"$sources"

cd "$BUILD"
run=(java -Dcryo.hooks.version="$version" -jar "$JUNIT_CONSOLE_JAR" --disable-banner --disable-ansi-colors
  --details=tree --class-path "$jar:$BUILD/test-classes" --reports-dir "$BUILD/reports")
if [ $# -gt 0 ]; then
  exec "${run[@]}" "$@"
fi
exec "${run[@]}" --scan-class-path "$BUILD/test-classes" --fail-if-no-tests
