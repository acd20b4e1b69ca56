#!/usr/bin/env bash
# Temporal's time-skipping test server (the Java one, io.temporal:temporal-test-server from Maven Central),
# for the workflow unit tests (test/workflows/). It is not the Temporal CLI dev server the stack runs:
# only the test server can skip time, so a 30-minute approval deadline takes milliseconds.
#
#   bash scripts/install-test-server.sh     installs it if missing; prints the wrapper's path on stdout
#
# The jars go to $FERRY_CACHE_DIR/temporal-test-server/<version>/lib (Maven's own downloads to .../m2 beside
# them), and a small executable there runs `java -cp 'lib/*' io.temporal.testserver.TestServer <port>`,
# which is how the TypeScript SDK starts a test server given as `{ type: 'existing-path', path }`.
# The install ends with one run of the server that records the classes it loads into a class-data
# sharing archive (classes.jsa, JDK AppCDS): later starts map it instead of loading ~40 MB of jars,
# which halves the start (the workflow tests start one server per test).
# Progress goes to stderr. Needs Java 17+ and Maven (installed from Debian's packages when missing).
set -euo pipefail

VERSION=1.38.0
MAVEN_DEPENDENCY_PLUGIN=3.8.1
SLF4J_VERSION=1.7.36   # the slf4j-api the test server depends on
CACHE_DIR="$(realpath -m "${FERRY_CACHE_DIR:-$HOME/.cache/ferry}")"
HOME_DIR="$CACHE_DIR/temporal-test-server"
DIR="$HOME_DIR/$VERSION"
EXE="$DIR/temporal-test-server"
# What an install holds; a folder installed from another list is installed again.
SPEC="io.temporal:temporal-test-server:$VERSION org.slf4j:slf4j-nop:$SLF4J_VERSION cds-archive"

say() { printf '%s\n' "$*" >&2; }

installed() { [[ -x "$EXE" && "$(cat "$DIR/installed" 2>/dev/null)" == "$SPEC" ]]; }
if installed; then
  echo "$EXE"
  exit 0
fi
# One install at a time (test files started together may all find it missing).
mkdir -p "$HOME_DIR"
exec 9>"$HOME_DIR/.lock"
flock 9
if installed; then
  echo "$EXE"
  exit 0
fi

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then
  say "==> installing Debian's Java runtime and Maven (to fetch and run Temporal's test server)"
  as_root apt-get install -y --no-install-recommends default-jre-headless maven >&2 \
    || { as_root apt-get update >&2 && as_root apt-get install -y --no-install-recommends default-jre-headless maven >&2; }
fi

start=$(date +%s)
say "==> installing Temporal's test server $VERSION (io.temporal:temporal-test-server and its jars, ~40 MB from Maven Central) into $DIR"
# Build in a scratch folder and move it into place at the end, so an interrupted install is redone, not half-used.
work="$(mktemp -d "$HOME_DIR/.install-$VERSION.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cat >"$work/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>ferry</groupId>
  <artifactId>temporal-test-server-install</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>io.temporal</groupId>
      <artifactId>temporal-test-server</artifactId>
      <version>$VERSION</version>
    </dependency>
    <!-- a logging backend that drops the server's logs (without one, SLF4J warns on every start) -->
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-nop</artifactId>
      <version>$SLF4J_VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF
# Maven's own output only when it fails (it is noise otherwise).
mvn -B -q -f "$work/pom.xml" -Dmaven.repo.local="$HOME_DIR/m2" \
  "org.apache.maven.plugins:maven-dependency-plugin:$MAVEN_DEPENDENCY_PLUGIN:copy-dependencies" \
  -DincludeScope=runtime -DoutputDirectory="$work/lib" >"$work/maven.log" 2>&1 \
  || { cat "$work/maven.log" >&2; say "error: Maven could not fetch the test server (log above)"; exit 1; }
rm -f "$work/maven.log"
cat >"$work/temporal-test-server" <<'EOF'
#!/usr/bin/env bash
# Temporal's Java test server; the TypeScript SDK runs it as `temporal-test-server <port>`.
# C1-compiled only and the serial collector: it starts faster and uses less memory, which matters more
# than its peak speed for a test run. With the install's class-data archive when it is there (a JVM that
# cannot use it, e.g. another JDK, just loads the jars: -Xshare:auto).
dir="$(dirname "$0")"
cds=()
[[ -f "$dir/classes.jsa" ]] && cds=(-XX:SharedArchiveFile="$dir/classes.jsa" -Xshare:auto -Xlog:cds=off -Xlog:cds+dynamic=off)
exec java "${cds[@]}" -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xss512k -cp "$dir/lib/*" io.temporal.testserver.TestServer "$@"
EOF
chmod +x "$work/temporal-test-server"
rm -f "$work/pom.xml"
rm -rf "$DIR"
mv "$work" "$DIR"
trap - EXIT

# The class-data archive, from the final folder (an archive records the class path it was made with).
# One server run until it listens, then a normal exit (SIGTERM), at which the JVM writes the archive.
# Best effort: without it the server starts as before, only slower.
say "  recording the server's classes for faster starts (class-data sharing archive)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
java -XX:ArchiveClassesAtExit="$DIR/classes.jsa" -Xlog:cds=off -Xlog:cds+dynamic=off -XX:+UseSerialGC \
  -XX:TieredStopAtLevel=1 -Xss512k -cp "$DIR/lib/*" io.temporal.testserver.TestServer "$port" >/dev/null 2>&1 &
server=$!
for _ in $(seq 1 300); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
kill -TERM "$server" 2>/dev/null || true
wait "$server" 2>/dev/null || true
[[ -s "$DIR/classes.jsa" ]] || { rm -f "$DIR/classes.jsa"; say "  (no archive was written: the server starts without it)"; }
echo "$SPEC" >"$DIR/installed"
say "  installed in $(($(date +%s) - start))s: $EXE"
echo "$EXE"
