#include "daemon/status_page.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>

namespace pgwd::daemon {
namespace {

std::string duration_text(std::chrono::nanoseconds elapsed) {
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(elapsed).count();
  if (seconds < 1)
    return fmt::format("{}ms", std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count());
  if (seconds < 60) return fmt::format("{}s", seconds);
  if (seconds < 3600) return fmt::format("{}m{:02}s", seconds / 60, seconds % 60);
  if (seconds < 86400) return fmt::format("{}h{:02}m", seconds / 3600, seconds % 3600 / 60);
  return fmt::format("{}d{:02}h", seconds / 86400, seconds % 86400 / 3600);
}

std::string utc_text(std::chrono::system_clock::time_point at) {
  return fmt::format("{:%Y-%m-%d %H:%M:%S} UTC",
                     std::chrono::time_point_cast<std::chrono::seconds>(at));
}

std::string connections_text(const std::vector<ConnectionState>& states) {
  constexpr std::array order = {ConnectionState::healthy,    ConnectionState::probing,
                                ConnectionState::inspecting, ConnectionState::connecting,
                                ConnectionState::resolving,  ConnectionState::waiting,
                                ConnectionState::backoff,    ConnectionState::down,
                                ConnectionState::stopped};
  std::string text;
  for (const ConnectionState state : order) {
    const auto count = std::count(states.begin(), states.end(), state);
    if (count == 0) continue;
    if (!text.empty()) text += ", ";
    text += fmt::format("{} {}", count, to_string(state));
  }
  return text;
}

std::string_view role_text(const std::string& in_hot_standby) {
  if (in_hot_standby == "off") return "primary";
  if (in_hot_standby == "on") return "standby";
  return "-";
}

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
      "/-/healthy</a> · <a href=\"/-/ready\">/-/ready</a></p>\n"
      "<p id=\"summary\">{} targets: {} up, {} down. As of {}; refreshes every 5 s.</p>\n",
      html_escaped(version), targets.size(), up, static_cast<long>(targets.size()) - up,
      utc_text(now_wall));
  page +=
      "<table id=\"targets\"><thead><tr><th>target</th><th>status</th><th>connections</th>"
      "<th>role</th><th>outage</th><th>last disconnect</th><th>last connect failure</th></tr>"
      "</thead><tbody>\n";
  for (const TargetStatus& t : targets) {
    const bool is_up = t.up();
    const std::string_view status = is_up ? "up" : (t.attempted ? "down" : "pending");
    std::string outage = "-";
    if (!is_up && t.down_since) outage = duration_text(now - *t.down_since);
    std::string last = "-";
    if (t.last_disconnect) {
      last = std::string(to_string(*t.last_disconnect));
      if (!t.last_disconnect_sqlstate.empty()) last += " (" + t.last_disconnect_sqlstate + ")";
      last += " at " + utc_text(t.last_disconnect_at) + ", " +
              duration_text(now_wall - t.last_disconnect_at) + " ago";
    }
    std::string failure = "-";
    if (t.last_connect_failure)
      failure = std::string(to_string(*t.last_connect_failure)) + ", " +
                duration_text(now_wall - t.last_connect_failure_at) + " ago";
    page += fmt::format(
        "<tr><td class=\"name\">{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td>"
        "<td>{}</td><td>{}</td></tr>\n",
        html_escaped(t.name), status, status, connections_text(t.connections),
        role_text(t.in_hot_standby), outage, html_escaped(last), failure);
  }
  page += "</tbody></table>\n</body></html>\n";
  return page;
}

}  // namespace pgwd::daemon
