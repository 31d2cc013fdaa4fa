// Hostile and mistyped configuration (docs/configuration.md "Limits"): every case is refused with a
// message that names what is wrong, within a time bound and without the memory it used to take.
// Each test case runs in its own process under ctest, so the peak RSS it sees is its own.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <string>

#include "daemon/config.hpp"
#include "daemon/duration.hpp"
#include "daemon/effective_config.hpp"
#include "daemon/yaml_document.hpp"
#include "pgwd/watchdog.hpp"
#include "support/thread_cpu_clock.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using namespace pgwd;
using namespace pgwd::daemon;

namespace {

constexpr std::string_view kOrigin = "/etc/pgwatchdog.yaml";

struct Bounds {
  std::chrono::milliseconds time;  // of the loading thread's CPU
  long memory_kib;  // growth of this process's peak RSS while loading
};
// The bugs took gigabytes and never ended; each hostile case now takes milliseconds and a few MB.
constexpr Bounds kHostileBounds{1000ms, 128 * 1024};
// The largest inputs the limits still let yaml-cpp build (10,000 targets: 0.4 s and 42 MB in a
// release build, measured). AddressSanitizer's Debug build is about 10 times slower and keeps
// up to 256 MB of freed memory in quarantine.
#if defined(__SANITIZE_ADDRESS__)
constexpr Bounds kLargestInputBounds{20'000ms, 1024 * 1024};
#else
constexpr Bounds kLargestInputBounds{2000ms, 256 * 1024};
#endif

long peak_rss_kib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

// Runs `load`, expects a ConfigError, and checks its CPU time (the loader runs on this thread
// alone; wall time failed here at 2.6 s for 2 s of bound with the suite beside it on two cores)
// and memory bounds. Returns the message.
std::string refusal_of(const std::function<void()>& load, Bounds bounds = kHostileBounds) {
  const long rss_before = peak_rss_kib();
  const auto start = pgwd::testing::thread_cpu_time();
  std::string message = "(no error)";
  try {
    load();
  } catch (const ConfigError& e) {
    message = e.what();
  }
  const auto took = pgwd::testing::thread_cpu_time() - start;
  const auto took_ms = std::chrono::duration_cast<std::chrono::milliseconds>(took).count();
  const long grew_kib = peak_rss_kib() - rss_before;
  CHECK_MESSAGE(took < bounds.time, took_ms, " ms");
  CHECK_MESSAGE(grew_kib < bounds.memory_kib, grew_kib, " KiB more");
  // One line, and only printable ASCII or UTF-8 (never a raw byte of the input).
  CHECK(message.find('\n') == std::string::npos);
  CHECK_FALSE(find_invalid_utf8(message).has_value());
  for (char c : message) CHECK(static_cast<unsigned char>(c) >= 0x20);
  return message;
}

std::string refusal_of_text(std::string_view yaml, Bounds bounds = kHostileBounds) {
  return refusal_of([&] { (void)parse_config(yaml, kOrigin); }, bounds);
}

std::string target_with(std::string_view line) {
  return "targets:\n  - name: a\n    dsn: host=x\n    " + std::string(line) + "\n";
}

class TemporaryPath {
 public:
  TemporaryPath()
      : path_(std::filesystem::temp_directory_path() /
              ("pgwd_hostile_test_" + std::to_string(getpid()))) {}
  ~TemporaryPath() { std::filesystem::remove(path_); }
  TemporaryPath(const TemporaryPath&) = delete;
  TemporaryPath& operator=(const TemporaryPath&) = delete;
  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

bool contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

// A configuration of targets with these names and every other setting left at its default.
DaemonConfig config_of_targets(std::initializer_list<const char*> names) {
  DaemonConfig config;
  config.listen = "127.0.0.1:0";
  for (const char* name : names) {
    TargetOptions t;
    t.name = name;
    config.targets.push_back(t);
  }
  return config;
}

}  // namespace

TEST_CASE("hostile config: a lone comma no longer loops forever in yaml-cpp (yaml-cpp #1040)") {
  for (std::string_view text : {",", ",targets:", "#c\n\n,x", "log_level: info\n--- ,\n", ", ,"}) {
    CAPTURE(text);
    CHECK(contains(refusal_of_text(text), "YAML syntax error: unexpected ','"));
  }
  CHECK(refusal_of_text(",targets:\n  - name: a\n") ==
        "/etc/pgwatchdog.yaml:1: YAML syntax error: unexpected ','");
}

TEST_CASE("hostile config: documents - a trailing empty one is fine, any other is refused") {
  CHECK(parse_config("targets:\n  - {name: a, dsn: host=x}\n---\n", kOrigin).targets.size() == 1);
  CHECK(parse_config("---\ntargets:\n  - {name: a, dsn: host=x}\n...\n", kOrigin).targets.size() ==
        1);
  CHECK(refusal_of_text("---\n---\ntargets: []\n") ==
        "/etc/pgwatchdog.yaml:2: only one YAML document is allowed (found a second one)");
}

TEST_CASE("hostile config: YAML aliases are counted at what they expand to") {
  // Each level multiplies by 10: 10^7 nodes from a few hundred bytes.
  std::string bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int level = 1; level <= 7; ++level) {
    bomb += "a" + std::to_string(level) + ": &a" + std::to_string(level) + " [";
    for (int i = 0; i < 10; ++i) bomb += (i ? ", *a" : "*a") + std::to_string(level - 1);
    bomb += "]\n";
  }
  CHECK(contains(refusal_of_text(bomb),
                 "the document is larger than 4 MiB once its YAML aliases "
                 "are expanded"));

  // The same list aliased into many targets is counted once per target.
  std::string channels = "defaults: {listen_channels: &c [";
  for (int i = 0; i < 100; ++i)
    channels += (i ? ", c" : "c") + std::to_string(i) + std::string(50, 'x');
  channels += "]}\ntargets:\n";
  for (int i = 0; i < 2000; ++i)
    channels += "  - {name: t" + std::to_string(i) + ", dsn: host=x, listen_channels: *c}\n";
  CHECK(contains(refusal_of_text(channels), "once its YAML aliases are expanded"));

  // A small legitimate use of an alias still works.
  const DaemonConfig config = parse_config(R"(targets:
  - {name: a, dsn: host=x, listen_channels: &jobs [jobs, mail]}
  - {name: b, dsn: host=y, listen_channels: *jobs}
)",
                                           kOrigin);
  REQUIRE(config.targets.size() == 2);
  CHECK(config.targets[1].listen_channels == std::vector<std::string>{"jobs", "mail"});
}

TEST_CASE("hostile config: durations have ranges, so nothing overflows as nanoseconds") {
  struct Range {
    std::string_view key, low, high, above;
  };
  for (const Range& r :
       {Range{"probe_timeout", "1ms", "1h", "61m"}, Range{"connect_timeout", "1ms", "10m", "601s"},
        Range{"heartbeat", "0s", "24h", "25h"}, Range{"keepalives_idle", "1s", "32767s", "32768s"},
        Range{"keepalives_interval", "1s", "32767s", "32768s"},
        Range{"tcp_user_timeout", "0s", "24h", "86400001ms"},
        Range{"backoff_initial", "1ms", "1h", "3600001ms"},
        Range{"backoff_max", "1ms", "24h", "2562048h"},
        Range{"scout_interval", "0s", "1h", "3600001ms"}}) {
    CAPTURE(r.key);
    const std::string key(r.key);
    const std::string range =
        " is out of range (" + std::string(r.low) + " to " + std::string(r.high) + ")";
    CHECK(refusal_of_text(target_with(key + ": " + std::string(r.above))) ==
          "/etc/pgwatchdog.yaml:4: " + key + ": '" + std::string(r.above) + "'" + range);
    // Past what milliseconds can count: the same message, not another one.
    CHECK(refusal_of_text(target_with(key + ": 99999999999999999999h")) ==
          "/etc/pgwatchdog.yaml:4: " + key + ": '99999999999999999999h'" + range);
    // The bounds themselves are accepted (backoff_max must not be below backoff_initial).
    const std::string extra = key == "backoff_initial" ? "\n    backoff_max: 24h" : "";
    CHECK_NOTHROW(parse_config(target_with(key + ": " + std::string(r.high) + extra), kOrigin));
  }
  // The library refuses the same values for embedders, naming the target.
  TargetOptions options;
  options.name = "lib";
  options.heartbeat = std::chrono::hours(2562048);
  CHECK_THROWS_WITH_AS(validate(options),
                       "target 'lib': heartbeat must be at most 24h (got 9223372800000ms)",
                       InvalidTarget);
  options.heartbeat = 24h;
  CHECK_NOTHROW(validate(options));
}

TEST_CASE("hostile config: connections, keepalive counts and ports have ranges") {
  CHECK(refusal_of_text(target_with("connections: 2147483647")) ==
        "/etc/pgwatchdog.yaml:4: connections: '2147483647' is out of range (1 to 1000)");
  CHECK(refusal_of_text(target_with("keepalives_count: 128")) ==
        "/etc/pgwatchdog.yaml:4: keepalives_count: '128' is out of range (1 to 127)");
  CHECK(refusal_of_text("targets:\n  - {name: a, dsn: \"host=x,y port=5432,0\"}\n") ==
        "/etc/pgwatchdog.yaml:2: target 'a': port '0' is not a number from 1 to 65535");
  CHECK(refusal_of_text("listen: \"127.0.0.1:65536\"\n") ==
        "/etc/pgwatchdog.yaml:1: listen: bad address '127.0.0.1:65536' (expected HOST:PORT, e.g. "
        "127.0.0.1:10432)");
  TargetOptions options;
  options.name = "lib";
  options.connections = 2147483647;
  CHECK_THROWS_WITH_AS(validate(options),
                       "target 'lib': connections must be at most 1000 (got 2147483647)",
                       InvalidTarget);
}

TEST_CASE("hostile config: totals over all targets are bounded") {
  std::string many = "targets:\n";
  for (std::size_t i = 0; i <= kMaxTargets; ++i)
    many += "  - {name: t" + std::to_string(i) + ", dsn: host=h}\n";
  CHECK(contains(refusal_of_text(many, kLargestInputBounds), "more than 10000 targets"));

  std::string connections = "defaults: {connections: 1000}\ntargets:\n";
  for (int i = 0; i <= 10; ++i)
    connections += "  - {name: t" + std::to_string(i) + ", dsn: host=h}\n";
  CHECK(contains(refusal_of_text(connections, kLargestInputBounds),
                 "target 't10': more than 10000 connections in all targets together"));

  // The defaults' probe query, copied into every target.
  std::string copies =
      "defaults: {probe_query: \"SELECT '" + std::string(4000, 'x') + "'\"}\ntargets:\n";
  for (int i = 0; i < 5000; ++i) copies += "  - {name: t" + std::to_string(i) + ", dsn: host=h}\n";
  CHECK(contains(refusal_of_text(copies, kLargestInputBounds),
                 "the targets take more than 16 MiB once defaults are "
                 "applied to each"));
  CHECK(contains(refusal_of_text(target_with("probe_query: \"" + std::string(5000, 'x') + "\"")),
                 "probe_query: longer than 4096 bytes (5000)"));
}

TEST_CASE("hostile config: target names are printable UTF-8, refused with the byte offset") {
  struct Case {
    std::string_view yaml_name, message;
  };
  for (const Case& c : {
           Case{"\"a\\x7fb\"",
                "target 'a\\x7fb': name contains U+007F, which is not printable, at byte offset 1"},
           Case{"\"ab\\u2028\"",
                "target 'ab\\xe2\\x80\\xa8': name contains U+2028, which is not printable, at byte "
                "offset 2"},
           Case{"\"x\\u202Ey\"",
                "target 'x\\xe2\\x80\\xaey': name contains U+202E, which is not printable, at byte "
                "offset 1"},
           Case{"\"\\u2066x\"",
                "target '\\xe2\\x81\\xa6x': name contains U+2066, which is not printable, at byte "
                "offset 0"},
           Case{"\"z\\u200B\"",
                "target 'z\\xe2\\x80\\x8b': name contains U+200B, which is not printable, at byte "
                "offset 1"},
           Case{"\"c1\\x85\"",
                "target 'c1\\xc2\\x85': name contains U+0085, which is not printable, at byte "
                "offset 2"},
       }) {
    CAPTURE(c.yaml_name);
    CHECK(refusal_of_text("targets:\n  - name: " + std::string(c.yaml_name) +
                          "\n    dsn: host=h\n") ==
          "/etc/pgwatchdog.yaml:2: " + std::string(c.message));
  }
  // Raw invalid UTF-8 never reaches yaml-cpp: the file is refused at the byte.
  CHECK(refusal_of_text("targets:\n  - name: a\xff\n") ==
        "/etc/pgwatchdog.yaml:2: not valid UTF-8 at byte offset 20 (a config file must be UTF-8)");
  CHECK(refusal_of_text("log_level: \xc0\xaf\n") ==
        "/etc/pgwatchdog.yaml:1: not valid UTF-8 at byte offset 11 (a config file must be UTF-8)");
  CHECK(refusal_of_text("log_level: in\x01"
                        "fo\n") ==
        "/etc/pgwatchdog.yaml:1: character U+0001 at byte offset 13 is not allowed in YAML (write "
        "it as an escape in a double-quoted string)");
  // The library refuses names that are not UTF-8 (they can come from --target or an embedder).
  TargetOptions options;
  options.name = "bad\xe2\x82";
  CHECK_THROWS_WITH_AS(validate(options),
                       "target 'bad\\xe2\\x82': name is not valid UTF-8 at byte offset 3",
                       InvalidTarget);
  // What is printable passes: quotes, backslashes, accents, CJK, emoji, spaces.
  const DaemonConfig config = parse_config(
      "targets:\n  - name: \"q\\\" b\\\\ \u00e9t\u00e9 \u6771\u4eac \U0001F418 }{=,\"\n    dsn: "
      "host=h\n",
      kOrigin);
  CHECK(config.targets[0].name == "q\" b\\ \u00e9t\u00e9 \u6771\u4eac \U0001F418 }{=,");
}

TEST_CASE("hostile config: garbage never echoes a raw byte into the message") {
  std::string garbage;
  for (int i = 0; i < 256; ++i) garbage += static_cast<char>((i * 73 + 11) % 256);
  (void)refusal_of_text(garbage);  // refusal_of checks the message is printable
  (void)refusal_of_text("targets: [\"\\xff\\x01\": 1]\n");
  (void)refusal_of_text("\"\\u0001\": x\n");
  (void)refusal_of_text(std::string(3000, '[') + std::string(3000, ']'));  // deep nesting
}

TEST_CASE("hostile config: the file must be a regular file of at most 4 MiB") {
  CHECK(refusal_of([] { (void)load_config_file("/dev/zero"); }) ==
        "cannot read config file '/dev/zero': not a regular file (a character device)");
  CHECK(refusal_of([] { (void)load_config_file("/dev/null"); }) ==
        "cannot read config file '/dev/null': not a regular file (a character device)");

  const TemporaryPath fifo;
  REQUIRE(mkfifo(fifo.str().c_str(), 0600) == 0);
  // No writer: opening it must not wait for one.
  CHECK(refusal_of([&] { (void)load_config_file(fifo.str()); }) ==
        "cannot read config file '" + fifo.str() + "': not a regular file (a FIFO)");
}

TEST_CASE("hostile config: a file over 4 MiB is refused before it is parsed") {
  const TemporaryPath big;
  {
    std::ofstream out(big.str());
    out << "targets:\n";
    const std::string comment = "# " + std::string(1000, 'x') + "\n";
    for (std::size_t written = 0; written <= kMaxConfigBytes; written += comment.size())
      out << comment;
  }
  CHECK(refusal_of([&] { (void)load_config_file(big.str()); }) ==
        big.str() + ": larger than 4 MiB, the limit for a config file");
  CHECK(contains(refusal_of_text(std::string(kMaxConfigBytes + 1, ' ')), "larger than 4 MiB"));
}

TEST_CASE("hostile config: --target names and DSNs are checked like the file's") {
  CommandLine cli;
  cli.targets = {{"a\nb", "host=x"}};
  CHECK(refusal_of([&] { (void)effective_config(cli); }) ==
        "--target: target 'a\\x0ab': name contains U+000A, which is not printable, at byte "
        "offset 1");
  cli.targets = {{"ok", "host=x dbname=\xff"}};
  CHECK(refusal_of([&] { (void)effective_config(cli); }) ==
        "--target ok: a DSN value is not valid UTF-8 once %-decoded");
  cli.targets = {{"ok", "host=x password=\xff"}};  // never printed: fine
  CHECK_NOTHROW(effective_config(cli));
  // Found by config_fuzzer: a URI's %DD decodes to a byte that --check-config could not print.
  CHECK(refusal_of_text("targets:\n  - {name: a, dsn: \"postgresql://h/db%DD\"}\n") ==
        "/etc/pgwatchdog.yaml:2: target 'a': a DSN value is not valid UTF-8 once %-decoded");
  cli.targets = {{"ok", "host=x"}};
  cli.listen = "[::1]:10432";
  CHECK(contains(refusal_of([&] { (void)effective_config(cli); }),
                 "IPv6 addresses are not supported"));
}

TEST_CASE("check-config: the output is YAML that loads back to the same configuration") {
  const DaemonConfig config = parse_config(R"(listen: "0.0.0.0:0"
log_level: debug
log_format: json
defaults:
  connections: 3
  probe_query: "SELECT 'it''s \"quoted\" \\ here'"
  heartbeat: 90s
  heartbeat_query: "SELECT 'beat'"
  listen_channels: ["jobs", "a \"b\" c", "\u00e9v\u00e9nements", "tab\there"]
targets:
  - name: "q\" b\\ \u00e9t\u00e9 \U0001F418 #not-a-comment: [x]"
    dsn: "host=db1 user='o\\'neil' password=hunter2 application_name='a b'"
  - name: "- dash"
    dsn: "postgresql://u:pw@h1,h2:5433/app?target_session_attrs=standby"
    probe_timeout: 1500ms
    backoff_max: 2h
    scout_interval: 250ms
    heartbeat: 0
    listen_channels: []
  - name: "'single'"
    dsn: ""
    keepalives_count: 127
    tcp_user_timeout: 0
)",
                                           kOrigin);
  const std::string printed = to_yaml(config);
  CAPTURE(printed);
  CHECK(printed.find("hunter2") == std::string::npos);
  CHECK(printed.find(":pw@") == std::string::npos);
  const DaemonConfig reloaded = parse_config(printed, "printed");
  CHECK(reloaded.listen == config.listen);
  CHECK(reloaded.log_level == config.log_level);
  CHECK(reloaded.log_format == config.log_format);
  REQUIRE(reloaded.targets.size() == config.targets.size());
  for (std::size_t i = 0; i < config.targets.size(); ++i) {
    TargetOptions expected = config.targets[i];
    expected.conninfo = redact_conninfo(expected.conninfo);
    CHECK(reloaded.targets[i] == expected);
  }
  // Printing what was loaded back gives the same text: nothing drifts.
  CHECK(to_yaml(reloaded) == printed);
}

TEST_CASE("check-config: strings with characters YAML cannot hold raw are escaped") {
  CHECK(yaml_quoted("plain") == "\"plain\"");
  CHECK(yaml_quoted("a\"b\\c") == "\"a\\\"b\\\\c\"");
  CHECK(yaml_quoted("\t\n\x01\x7f") == "\"\\x09\\x0A\\x01\\x7F\"");
  CHECK(yaml_quoted("\u00e9\u2028\ufeff\U0001F418") == "\"\u00e9\\u2028\\uFEFF\U0001F418\"");
  CHECK(yaml_quoted(std::string_view("\0", 1)) == "\"\\x00\"");
}

TEST_CASE("check-config: says when listen cannot be bound, and when it is only busy") {
  DaemonConfig config;
  config.targets.push_back([] {
    TargetOptions t;
    t.name = "a";
    return t;
  }());
  config.listen = "192.0.2.1:10432";  // TEST-NET-1: not an address of this host
  CHECK(refusal_of([&] { (void)describe(config); }) ==
        "listen: cannot listen on 192.0.2.1:10432: Cannot assign requested address");
  config.listen = "no-such-host.invalid:10432";
  CHECK(contains(refusal_of([&] { (void)describe(config); }),
                 "listen: cannot listen on no-such-host.invalid:10432: "));

  // Busy: a socket of ours listens there. Valid, with a comment saying so.
  const int holder = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(holder >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(holder, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  REQUIRE(::listen(holder, 1) == 0);
  socklen_t length = sizeof address;
  REQUIRE(::getsockname(holder, reinterpret_cast<sockaddr*>(&address), &length) == 0);
  config.listen = "127.0.0.1:" + std::to_string(ntohs(address.sin_port));
  const std::string text = describe(config);
  ::close(holder);
  CHECK(text.starts_with("# listen: " + config.listen + " is in use right now"));
  CHECK(parse_config(text, "printed").listen == config.listen);
  config.listen = "127.0.0.1:0";
  CHECK(describe(config).starts_with("listen: \"127.0.0.1:0\""));
}

TEST_CASE("check-config: warns about a target with heartbeat 0 - and only about that one") {
  DaemonConfig config = config_of_targets({"beating", "silent"});
  CHECK(warnings(config).empty());  // the default heartbeat
  CHECK(describe(config).starts_with("listen: "));
  config.targets[1].heartbeat = Duration::zero();
  const std::string text = describe(config);
  CHECK(text.starts_with("# warning: target \"silent\" has heartbeat 0: a hung server, "));
  CHECK(warnings(config).find("beating") == std::string::npos);
  // Still the configuration, read back the same.
  const DaemonConfig reloaded = parse_config(text, "printed");
  REQUIRE(reloaded.targets.size() == 2);
  CHECK(reloaded.targets[1].heartbeat == Duration::zero());
  CHECK(reloaded.targets[0].heartbeat == TargetOptions{}.heartbeat);
}

TEST_CASE("check-config: a pooled target with heartbeat 0 gets a warning of its own") {
  DaemonConfig config = config_of_targets({"direct", "pooled", "pooled-beating"});
  config.targets[0].heartbeat = Duration::zero();
  config.targets[1].heartbeat = Duration::zero();
  config.targets[1].pooler = Pooler::pgbouncer;
  config.targets[2].pooler = Pooler::pgbouncer;
  const std::string text = warnings(config);
  CHECK(text.find("# warning: target \"pooled\" is behind pgbouncer with heartbeat 0: in "
                  "transaction pooling nothing reaches an idle connection") != std::string::npos);
  CHECK(text.find("\"direct\" is behind") == std::string::npos);
  CHECK(text.find("pooled-beating") == std::string::npos);
  // Printed, and read back the same.
  const std::string described = describe(config);
  CHECK(described.find("    pooler: pgbouncer\n") != std::string::npos);
  CHECK(described.find("    pooler: none\n") != std::string::npos);
  const DaemonConfig reloaded = parse_config(described, "printed");
  REQUIRE(reloaded.targets.size() == 3);
  CHECK(reloaded.targets[0].pooler == Pooler::none);
  CHECK(reloaded.targets[1].pooler == Pooler::pgbouncer);
}

TEST_CASE("check-config: a proxied target with heartbeat 0 gets a warning of its own") {
  DaemonConfig config = config_of_targets({"direct", "proxied", "proxied-beating"});
  config.targets[0].heartbeat = Duration::zero();
  config.targets[1].heartbeat = Duration::zero();
  config.targets[1].proxied = true;
  config.targets[2].proxied = true;
  const std::string text = warnings(config);
  CHECK(text.find("# warning: target \"proxied\" is proxied with heartbeat 0: keepalives and "
                  "tcp_user_timeout reach only the proxy") != std::string::npos);
  CHECK(text.find("\"direct\" is proxied") == std::string::npos);
  CHECK(text.find("proxied-beating") == std::string::npos);
  const std::string described = describe(config);
  CHECK(described.find("    proxied: true\n") != std::string::npos);
  CHECK(described.find("    proxied: false\n") != std::string::npos);
  const DaemonConfig reloaded = parse_config(described, "printed");
  REQUIRE(reloaded.targets.size() == 3);
  CHECK_FALSE(reloaded.targets[0].proxied);
  CHECK(reloaded.targets[1].proxied);
}

TEST_CASE("check-config: in_front_of a target the configuration does not watch is a warning") {
  DaemonConfig config = config_of_targets({"direct", "pooled", "orphan"});
  config.targets[1].pooler = Pooler::pgbouncer;
  config.targets[2].pooler = Pooler::pgbouncer;
  config.targets[1].in_front_of = "direct";
  config.targets[2].in_front_of = "gone";
  const std::string text = warnings(config);
  CHECK(text == "# warning: target \"orphan\" is in_front_of \"gone\", which this configuration "
                "does not watch: no event of it can reach \"orphan\"\n");
  const DaemonConfig reloaded = parse_config(describe(config), "printed");
  REQUIRE(reloaded.targets.size() == 3);
  CHECK(reloaded.targets[0].in_front_of.empty());
  CHECK(reloaded.targets[1].in_front_of == "direct");
  CHECK(reloaded.targets[2].in_front_of == "gone");
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
