#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/status_board.hpp"

namespace pgwd::daemon {

/// Characters that mean something in HTML (& < > " ') as character references.
std::string html_escaped(std::string_view text);

/// The page at `/`: one self-contained HTML document (no scripts, styles inline, nothing fetched
/// from elsewhere, so it works offline), refreshing itself every 5 s, with a link to /metrics and
/// one compact table row per target: down targets first, then by name. Every name is escaped.
std::string render_status_page(std::vector<TargetStatus> targets, std::string_view version,
                               std::chrono::system_clock::time_point now_wall,
                               std::chrono::steady_clock::time_point now);

}  // namespace pgwd::daemon
