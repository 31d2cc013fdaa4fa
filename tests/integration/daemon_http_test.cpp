// End-to-end: the daemon's HTTP port (docs/daemon.md "HTTP endpoints"): health endpoints, the
// status page, and --web.config.file (TLS, client certificates, basic auth) checked with Debian's
// curl.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>

#include "support/bcrypt_hash.hpp"
#include "support/daemon_fixture.hpp"
#include "support/silent_listener.hpp"
#include "support/web_fixture.hpp"
#include "support/subprocess.hpp"
#include "support/tls_certificates.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using pgwd::testing::DaemonFixture;
using pgwd::testing::run_process;
using pgwd::testing::ShutdownMode;
using pgwd::testing::TlsCertificates;
using pgwd::testing::WebFixture;
using pgwd::testing::Curl;
using pgwd::testing::curl;
using pgwd::testing::SilentListener;

TEST_CASE_FIXTURE(DaemonFixture,
                  "http: /-/ready is 503 until every target has made its first attempt and then 200") {
  auto silent = std::make_unique<SilentListener>();
  // `silent`'s first attempt stays pending until the test ends it (by closing the listener),
  // however long the daemon's start and `main`'s connect take on a loaded machine.
  write_config("targets:\n" + target_yaml("main", 1) +
               "  - name: silent\n    dsn: \"host=127.0.0.1 port=" + std::to_string(silent->port) +
               " dbname=x user=x\"\n    connect_timeout: 10m\n");
  start_with_config();
  REQUIRE(wait_metric("pgwatchdog_up{target=\"main\"}", 1, 30s));
  const auto before = pgwd::testing::http_get("127.0.0.1", metrics_port, "/-/ready");
  CHECK(before.status == 503);
  CHECK(before.body == "not ready: not every target has made its first attempt\n");
  CHECK(pgwd::testing::http_get("127.0.0.1", metrics_port, "/-/healthy").status == 200);
  // Closed, the listener resets the connection it never accepted: the attempt fails.
  silent.reset();
  CHECK(waiter.run_until(
      [&] { return pgwd::testing::http_get("127.0.0.1", metrics_port, "/-/ready").status == 200; },
      10s));
  // The log line is written by the daemon's asynchronous logger: it may follow /-/ready.
  CHECK(waiter.run_until(
      [&] {
        return daemon->output().find("silent[0] connect attempt 1 failed: ") != std::string::npos;
      },
      10s));
}

TEST_CASE_FIXTURE(DaemonFixture,
                  "http: /-/healthy and /-/ready stay 200 while the database is down") {
  write_config("defaults:\n  backoff_max: 200ms\ntargets:\n" + target_yaml("db", 1));
  start_with_config();
  REQUIRE(wait_metric("pgwatchdog_up{target=\"db\"}", 1, 10s));
  cluster.stop(ShutdownMode::immediate);
  REQUIRE(wait_metric("pgwatchdog_up{target=\"db\"}", 0, 5s));
  CHECK(pgwd::testing::http_get("127.0.0.1", metrics_port, "/-/healthy").status == 200);
  CHECK(pgwd::testing::http_get("127.0.0.1", metrics_port, "/-/ready").status == 200);
}

TEST_CASE_FIXTURE(DaemonFixture,
                  "http: the status page lists every target as /metrics does with names escaped") {
  const std::string hostile = "<img src=x onerror=alert(1)>&'\\\"";
  write_config("defaults:\n  backoff_max: 300ms\ntargets:\n" + target_yaml("alpha", 2) +
               "  - name: '" + std::string("<img src=x onerror=alert(1)>&''\\\"") +
               "'\n    dsn: \"" + cluster.conninfo("hostile") + "\"\n" +
               "  - name: refused\n    dsn: \"host=127.0.0.1 port=1 dbname=x user=x\"\n");
  start_with_config();
  REQUIRE(wait_metric("pgwatchdog_connections{state=\"healthy\",target=\"alpha\"}", 2, 10s));
  REQUIRE(cluster.terminate_backends("alpha") == 2);
  // Healthy is still 2 until the watchdog has seen the terminations: wait for them first.
  REQUIRE(wait_metric(
      "pgwatchdog_disconnects_total{cause=\"server_shutdown\",target=\"alpha\"}", 2, 10s));
  REQUIRE(wait_metric("pgwatchdog_connections{state=\"healthy\",target=\"alpha\"}", 2, 10s));
  const auto page = pgwd::testing::http_get("127.0.0.1", metrics_port, "/");
  REQUIRE(page.status == 200);
  CHECK(page.headers.find("Content-Type: text/html; charset=utf-8") != std::string::npos);
  CHECK(page.body.find("<img") == std::string::npos);
  CHECK(page.body.find("&lt;img src=x onerror=alert(1)&gt;&amp;&#39;\\&quot;") != std::string::npos);
  CHECK(page.body.find("<a href=\"/metrics\">/metrics</a>") != std::string::npos);
  // Each row's status agrees with pgwatchdog_up.
  const std::string metrics = scrape();
  const std::regex row("<tr><td class=\"name\">([^<]*)</td><td class=\"(up|down|pending)\">");
  int rows = 0;
  for (auto it = std::sregex_iterator(page.body.begin(), page.body.end(), row);
       it != std::sregex_iterator(); ++it) {
    ++rows;
    const std::string shown = (*it)[1];
    const std::string name = shown == "alpha" || shown == "refused" ? shown : hostile;
    const std::string label = std::regex_replace(std::regex_replace(name, std::regex("\\\\"), "\\\\"),
                                                 std::regex("\""), "\\\"");
    const auto up = sample(metrics, "pgwatchdog_up{target=\"" + label + "\"}");
    REQUIRE_MESSAGE(up.has_value(), name);
    CHECK_MESSAGE(((*it)[2] == "up") == (*up == 1), name);
  }
  CHECK(rows == 3);
  CHECK(page.body.find("server_shutdown (57P01) at ") != std::string::npos);
  CHECK(page.body.find("<td class=\"name\">refused</td><td class=\"down\">down</td>") !=
        std::string::npos);
  CHECK(page.body.find("<td>primary</td>") != std::string::npos);
  CHECK(page.body.find("<td>connect_failed, ") != std::string::npos);  // `refused`'s attempts
}

TEST_CASE_FIXTURE(WebFixture, "http: basic auth: none or wrong credentials 401 and right ones 200") {
  write_web("basic_auth_users:\n  prometheus: " + pgwd::testing::bcrypt_hash("scrape-secret") + "\n");
  start_web();
  const std::string metrics = url("http", "/metrics");
  CHECK(curl({metrics}).status == "401");
  CHECK(curl({"-u", "prometheus:wrong", metrics}).status == "401");
  CHECK(curl({"-u", "nobody:scrape-secret", metrics}).status == "401");
  CHECK(curl({"-u", "prometheus:scrape-secret", metrics}).status == "200");
  // Every path, the health endpoints included (no --web.health-without-auth).
  CHECK(curl({url("http", "/-/healthy")}).status == "401");
  CHECK(curl({url("http", "/")}).status == "401");
  CHECK(waiter.run_until(
      [&] {
        return curl({"-u", "prometheus:scrape-secret", url("http", "/-/ready")}).status == "200";
      },
      10s));
  CHECK(daemon->output().find("scrape-secret") == std::string::npos);
  CHECK(daemon->output().find("$2y$") == std::string::npos);
}

TEST_CASE_FIXTURE(WebFixture, "http: --web.health-without-auth opens only the health endpoints") {
  write_web("basic_auth_users:\n  prometheus: " + pgwd::testing::bcrypt_hash("pw") + "\n");
  start_web({"--web.health-without-auth"});
  CHECK(curl({url("http", "/-/healthy")}).status == "200");
  // Ready once `main` has made its first attempt.
  CHECK(waiter.run_until([&] { return curl({url("http", "/-/ready")}).status == "200"; }, 10s));
  CHECK(curl({url("http", "/metrics")}).status == "401");
  CHECK(curl({url("http", "/")}).status == "401");
}

TEST_CASE_FIXTURE(WebFixture, "http: TLS verified against the CA and plain HTTP refused") {
  TlsCertificates certs("localhost");
  write_web("tls_server_config:\n  cert_file: " + certs.cert_file() +
            "\n  key_file: " + certs.key_file() + "\n");
  start_web();
  const std::string https = url("https", "/metrics");
  CHECK(curl({"--cacert", certs.ca_file(), https}).status == "200");
  CHECK(curl({https}).exit_code == 60);  // not trusted without the CA
  const Curl plain = curl({url("http", "/metrics")});
  CHECK(plain.status == "000");
  CHECK(plain.exit_code != 0);
  CHECK(daemon->output().find("serving metrics on https://") != std::string::npos);
  // min_version TLS12 (the default) accepts TLS 1.2; TLS 1.3 is on too.
  CHECK(curl({"--cacert", certs.ca_file(), "--tls-max", "1.2", https}).status == "200");
}

TEST_CASE_FIXTURE(WebFixture, "http: min_version TLS13 refuses a TLS 1.2 client") {
  TlsCertificates certs("localhost");
  write_web("tls_server_config:\n  cert_file: " + certs.cert_file() +
            "\n  key_file: " + certs.key_file() + "\n  min_version: TLS13\n");
  start_web();
  const std::string https = url("https", "/metrics");
  CHECK(curl({"--cacert", certs.ca_file(), https}).status == "200");
  CHECK(curl({"--cacert", certs.ca_file(), "--tls-max", "1.2", https}).exit_code == 35);
}

TEST_CASE_FIXTURE(WebFixture,
                  "http: RequireAndVerifyClientCert: no certificate or a foreign CA's is refused") {
  TlsCertificates certs("localhost");
  TlsCertificates other("localhost");
  const auto [client_cert, client_key] = certs.issue_client_certificate("prometheus");
  const auto [foreign_cert, foreign_key] = other.issue_client_certificate("intruder");
  write_web("tls_server_config:\n  cert_file: " + certs.cert_file() + "\n  key_file: " +
            certs.key_file() + "\n  client_auth_type: RequireAndVerifyClientCert\n"
            "  client_ca_file: " + certs.ca_file() + "\n");
  start_web({"--web.health-without-auth"});
  const std::string https = url("https", "/metrics");
  CHECK(curl({"--cacert", certs.ca_file(), https}).status == "403");
  CHECK(curl({"--cacert", certs.ca_file(), "--cert", foreign_cert, "--key", foreign_key, https})
            .status == "403");
  CHECK(curl({"--cacert", certs.ca_file(), "--cert", client_cert, "--key", client_key, https})
            .status == "200");
  // Kubernetes probes send no certificate: --web.health-without-auth lets them in.
  CHECK(curl({"--cacert", certs.ca_file(), url("https", "/-/healthy")}).status == "200");
}

TEST_CASE_FIXTURE(WebFixture, "http: VerifyClientCertIfGiven lets a client without one in") {
  TlsCertificates certs("localhost");
  TlsCertificates other("localhost");
  const auto [foreign_cert, foreign_key] = other.issue_client_certificate("intruder");
  write_web("tls_server_config:\n  cert_file: " + certs.cert_file() + "\n  key_file: " +
            certs.key_file() + "\n  client_auth_type: VerifyClientCertIfGiven\n"
            "  client_ca_file: " + certs.ca_file() + "\n");
  start_web();
  const std::string https = url("https", "/metrics");
  CHECK(curl({"--cacert", certs.ca_file(), https}).status == "200");
  CHECK(curl({"--cacert", certs.ca_file(), "--cert", foreign_cert, "--key", foreign_key, https})
            .status == "403");
}

TEST_CASE_FIXTURE(WebFixture,
                  "http: SIGHUP serves a new certificate and a broken web config keeps the old one") {
  TlsCertificates first("localhost");
  TlsCertificates second("localhost");
  const auto tls_yaml = [](const TlsCertificates& c) {
    return "tls_server_config:\n  cert_file: " + c.cert_file() + "\n  key_file: " + c.key_file() +
           "\n";
  };
  write_web(tls_yaml(first));
  start_web();
  const std::string https = url("https", "/metrics");
  REQUIRE(curl({"--cacert", first.ca_file(), https}).status == "200");
  CHECK(curl({"--cacert", second.ca_file(), https}).exit_code == 60);

  write_web(tls_yaml(second));
  daemon->send_signal(SIGHUP);
  REQUIRE(daemon->wait_for_output("web config reloaded", 10s));
  CHECK(curl({"--cacert", second.ca_file(), https}).status == "200");
  CHECK(curl({"--cacert", first.ca_file(), https}).exit_code == 60);

  write_web(tls_yaml(second) + "  min_version: TLS10\n");
  daemon->send_signal(SIGHUP);
  REQUIRE(daemon->wait_for_output("web config reload refused", 10s));
  CHECK(daemon->output().find("min_version: 'TLS10' is not supported") != std::string::npos);
  CHECK(curl({"--cacert", second.ca_file(), https}).status == "200");
  CHECK(daemon->running());
}

TEST_CASE_FIXTURE(WebFixture, "http: a bad web config is exit 2 naming the key - with --check-config too") {
  const auto run = [&](const std::string& yaml, std::vector<std::string> extra = {}) {
    write_web(yaml);
    std::vector<std::string> argv = {PGWD_DAEMON_BINARY, "--target",
                                     "main=" + cluster.conninfo("main"), "--listen", listen(),
                                     "--web.config.file", web_path.string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run_process(argv);
  };
  const std::string shown = web_path.string();
  for (const bool check : {false, true}) {
    std::vector<std::string> extra;
    if (check) extra.push_back("--check-config");
    auto result = run("tls_server_config:\n  cert_file: /nonexistent.crt\n  key_file: k\n", extra);
    CHECK(result.exit_code == 2);
    CHECK(result.output.find("tls_server_config: cert_file: cannot read '/nonexistent.crt'") !=
          std::string::npos);
    result = run("basic_auth_users:\n  admin: plaintext-password\n", extra);
    CHECK(result.exit_code == 2);
    CHECK(result.output.find(shown + ":2: basic_auth_users: admin: not a bcrypt hash") !=
          std::string::npos);
    CHECK(result.output.find("plaintext-password") == std::string::npos);
    result = run("tls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites: [x]\n", extra);
    CHECK(result.exit_code == 2);
    CHECK(result.output.find(":4: tls_server_config: cipher_suites: not supported") !=
          std::string::npos);
  }
  // A certificate that does not match its key.
  TlsCertificates a("localhost");
  TlsCertificates b("localhost");
  auto result = run("tls_server_config:\n  cert_file: " + a.cert_file() + "\n  key_file: " +
                    b.key_file() + "\n", {"--check-config"});
  CHECK(result.exit_code == 2);
  CHECK(result.output.find("do not load as a PEM certificate and its key") != std::string::npos);
  // And a good one passes --check-config.
  result = run("tls_server_config:\n  cert_file: " + a.cert_file() + "\n  key_file: " +
               a.key_file() + "\n", {"--check-config"});
  CHECK(result.exit_code == 0);
  result = run("", {"--check-config"});
  CHECK(result.exit_code == 0);
  std::filesystem::remove(web_path);
  result = run_process({PGWD_DAEMON_BINARY, "--target", "m=host=x", "--web.config.file",
                        web_path.string(), "--check-config"});
  CHECK(result.exit_code == 2);
  CHECK(result.output.find("--web.config.file: cannot read") != std::string::npos);
}

// The status page in a real browser: Debian's headless Chromium loads it from the running
// daemon, its DOM is checked against /metrics, and a screenshot is taken (kept in the repository
// for the README when PGWD_STATUS_SCREENSHOT names a path).
TEST_CASE_FIXTURE(DaemonFixture, "http: the status page in headless Chromium matches /metrics") {
  // heartbeat: 0: the DOM and the scrape below are read at different moments, and a heartbeat in
  // flight between them moves a connection from healthy to probing.
  write_config("defaults:\n  backoff_max: 300ms\n  heartbeat: 0\ntargets:\n" +
               target_yaml("orders", 3) +
               target_yaml("billing", 2) + target_yaml("reports", 1) +
               "  - name: legacy\n    dsn: \"host=127.0.0.1 port=1 dbname=x user=x\"\n");
  start_with_config();
  REQUIRE(wait_metric("pgwatchdog_connections{state=\"healthy\",target=\"orders\"}", 3, 10s));
  REQUIRE(wait_metric("pgwatchdog_up{target=\"reports\"}", 1, 10s));
  REQUIRE(wait_metric("pgwatchdog_connections{state=\"healthy\",target=\"billing\"}", 2, 10s));
  REQUIRE(cluster.terminate_backends("billing") == 2);
  REQUIRE(wait_metric(
      "pgwatchdog_disconnects_total{cause=\"server_shutdown\",target=\"billing\"}", 2, 10s));
  REQUIRE(wait_metric("pgwatchdog_connections{state=\"healthy\",target=\"billing\"}", 2, 10s));

  const auto profile = config_path.parent_path() / "chromium-profile";
  const std::string page_url = "http://127.0.0.1:" + std::to_string(metrics_port) + "/";
  // --no-sandbox: Chromium refuses to run as root with its sandbox, and CI runs as root.
  const std::vector<std::string> chromium = {"chromium", "--headless", "--no-sandbox",
                                             "--disable-gpu", "--no-first-run",
                                             "--user-data-dir=" + profile.string()};
  auto dump_argv = chromium;
  dump_argv.insert(dump_argv.end(), {"--dump-dom", page_url});
  const auto dom = run_process(dump_argv);
  REQUIRE_MESSAGE(dom.exit_code == 0, dom.output);
  const std::string metrics = scrape();
  const std::regex row("<tr><td class=\"name\">([^<]*)</td><td class=\"(up|down|pending)\">"
                       "(up|down|pending)</td><td>([^<]*)</td>");
  int rows = 0;
  for (auto it = std::sregex_iterator(dom.output.begin(), dom.output.end(), row);
       it != std::sregex_iterator(); ++it) {
    ++rows;
    const std::string name = (*it)[1];
    const auto up = sample(metrics, "pgwatchdog_up{target=\"" + name + "\"}");
    REQUIRE_MESSAGE(up.has_value(), name);
    CHECK_MESSAGE(((*it)[2] == "up") == (*up == 1), name);
    const auto healthy =
        sample(metrics, "pgwatchdog_connections{state=\"healthy\",target=\"" + name + "\"}");
    if (healthy && *healthy > 0)
      CHECK_MESSAGE((*it)[4].str().find(std::to_string(static_cast<int>(*healthy)) + " healthy") !=
                        std::string::npos,
                    name);
  }
  CHECK(rows == 4);
  CHECK(dom.output.find("4 targets: 3 up, 1 down") != std::string::npos);

  const char* keep = std::getenv("PGWD_STATUS_SCREENSHOT");
  const std::string png = keep ? keep : (config_path.parent_path() / "status-page.png").string();
  auto shot_argv = chromium;
  shot_argv.insert(shot_argv.end(),
                   {"--hide-scrollbars", "--window-size=1280,240", "--screenshot=" + png, page_url});
  const auto shot = run_process(shot_argv);
  REQUIRE_MESSAGE(shot.exit_code == 0, shot.output);
  std::ifstream file(png, std::ios::binary);
  std::string magic(8, '\0');
  file.read(magic.data(), 8);
  CHECK(magic == "\x89PNG\r\n\x1a\n");
  CHECK(std::filesystem::file_size(png) > 2000);
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
