#include "daemon/status_page.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "daemon/target_text.hpp"

namespace pgwd::daemon {
namespace {

constexpr std::string_view kHead = R"(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="5">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>pgwatchdog</title>
<style>
body{font:14px/1.35 system-ui,sans-serif;margin:1em 1.5em;color:#222}
h1{font-size:1.3em;margin:0 0 .2em}
p{margin:.3em 0}
table{border-collapse:collapse;margin-top:.6em}
th,td{padding:2px 10px;border-bottom:1px solid #ddd;text-align:left;white-space:nowrap}
th{background:#f3f3f3;position:sticky;top:0}
td.up{color:#176b24;font-weight:600}
td.down{color:#b00020;font-weight:600}
td.pending{color:#8a6d00}
</style></head><body>
)";

}  // namespace

std::string html_escaped(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string render_status_page(std::vector<TargetStatus> targets, std::string_view version,
                               std::chrono::system_clock::time_point now_wall,
                               std::chrono::steady_clock::time_point now) {
  std::stable_sort(targets.begin(), targets.end(), [](const TargetStatus& a, const TargetStatus& b) {
    if (a.up() != b.up()) return !a.up();
    return a.name < b.name;
  });
  const auto up = std::count_if(targets.begin(), targets.end(),
                                [](const TargetStatus& t) { return t.up(); });
  std::string page(kHead);
  page.reserve(page.size() + targets.size() * 256);
  page += fmt::format(
      "<h1>pgwatchdog {}</h1>\n<p><a href=\"/metrics\">/metrics</a> · <a href=\"/-/healthy\">"
      "/-/healthy</a> · <a href=\"/-/ready\">/-/ready</a> · <a href=\"/api/v1/targets\">"
      "/api/v1/targets</a></p>\n"
      "<p id=\"summary\">{} targets: {} up, {} down. As of {}; refreshes every 5 s.</p>\n",
      html_escaped(version), targets.size(), up, static_cast<long>(targets.size()) - up,
      utc_text(now_wall));
  page +=
      "<table id=\"targets\"><thead><tr><th>target</th><th>status</th><th>connections</th>"
      "<th>role</th><th>outage</th><th>last disconnect</th><th>last connect failure</th></tr>"
      "</thead><tbody>\n";
  for (const TargetStatus& t : targets) {
    const std::string_view status = to_string(t.state());
    const auto down_for = outage(t, now);
    const ServerRole role = t.role();
    page += fmt::format(
        "<tr><td class=\"name\">{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td>"
        "<td>{}</td><td>{}</td></tr>\n",
        html_escaped(t.name), status, status, connections_text(t),
        role == ServerRole::unknown ? "-" : to_string(role),
        down_for ? duration_text(*down_for) : "-",
        html_escaped(last_disconnect_text(t, now_wall).value_or("-")),
        last_connect_failure_text(t, now_wall).value_or("-"));
  }
  page += "</tbody></table>\n</body></html>\n";
  return page;
}

}  // namespace pgwd::daemon
