#!/usr/bin/env bash
# Compiles the Java hook client (library, conformance app, examples) with javac only, offline, and
# packs the library as a versioned modular jar with the JDK's jar tool; no Maven here (pom.xml is
# for publishing). The version is pom.xml's.
# OUT (default: <repo>/.tmp/java/classes) receives the classes of all three, to run with -cp; the
# jars go beside OUT: cryo-hooks-<version>.jar (the module dev.cryo.hooks, nothing else) and
# cryo-hooks-<version>-sources.jar. `build.sh --version` prints the version and builds nothing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
OUT="${OUT:-$root/.tmp/java/classes}"

# The project's own <version> is the only one indented by exactly two spaces (dependencies' and
# plugins' are deeper).
version="$(sed -n 's:^  <version>\([^<]*\)</version>\r*$:\1:p' "$here/pom.xml")"
if [ -z "$version" ] || [ "$(printf '%s\n' "$version" | wc -l)" -ne 1 ]; then
  echo "build.sh: cannot read the project version from $here/pom.xml" >&2
  exit 1
fi
if [ "${1:-}" = --version ]; then
  echo "$version"
  exit 0
fi

mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
jars="$(dirname "$OUT")"
jar="$jars/cryo-hooks-$version.jar"
sources_jar="$jars/cryo-hooks-$version-sources.jar"
# Stale classes of deleted sources; nothing else in OUT is touched.
rm -rf "$OUT/dev/cryo/hooks" "$OUT/module-info.class"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
jvm=(-J-XX:TieredStopAtLevel=1 -J-XX:+UseSerialGC) # short runs: start fast
javac=(javac "${jvm[@]}" --release 17 -Xlint:all -Werror -encoding UTF-8)

# The library as the module dev.cryo.hooks; then the conformance app and the examples against it
# on the class path, as applications without a module. They are compiled elsewhere first: javac
# would take sources compiled into a directory holding module-info.class for part of that module.
find "$here/src/main/java" -name '*.java' | sort | sed 's/.*/"&"/' >"$work/library"
find "$here/src/conformance/java" "$here/examples" -name '*.java' | sort | sed 's/.*/"&"/' >"$work/apps"
"${javac[@]}" --module-version "$version" -d "$OUT" @"$work/library"
"${javac[@]}" --class-path "$OUT" -d "$work/apps-classes" @"$work/apps"
cp -R "$work/apps-classes/." "$OUT/"

# What Maven would put in the jar, so that the jar names its coordinates wherever it is copied.
maven="$work/meta/META-INF/maven/dev.cryo/cryo-hooks"
mkdir -p "$maven"
cp "$here/pom.xml" "$maven/pom.xml"
printf 'groupId=dev.cryo\nartifactId=cryo-hooks\nversion=%s\n' "$version" >"$maven/pom.properties"
printf 'Implementation-Title: cryo-hooks\nImplementation-Version: %s\n' "$version" >"$work/manifest"

rm -f "$jar" "$sources_jar"
# Only the library's own package: the conformance app and examples live in sub-packages of OUT.
(cd "$OUT" && jar "${jvm[@]}" --create --file "$jar" --manifest "$work/manifest" --module-version "$version" \
  module-info.class dev/cryo/hooks/*.class -C "$work/meta" META-INF)
jar "${jvm[@]}" --create --file "$sources_jar" --no-manifest -C "$here/src/main/java" . -C "$work/meta" META-INF

cat <<MSG
compiled $(($(wc -l <"$work/library") + $(wc -l <"$work/apps"))) sources into $OUT
  library:         $jar (module dev.cryo.hooks@$version; sources: $(basename "$sources_jar"))
  conformance app: java -cp "$OUT" dev.cryo.hooks.conformance.ConformanceApp
  example:         java -cp "$OUT" dev.cryo.hooks.examples.HttpServerExample 8080
MSG
