#include "daemon/patroni/cluster_answer.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <unordered_set>

namespace pgwd::daemon {
namespace {

using nlohmann::json;

// A member's name or host as a message may show it: escaped and cut short, since it came from
// the network.
std::string shown(std::string_view text) {
  std::string out;
  for (const char c : text.substr(0, 64)) {
    const auto byte = static_cast<unsigned char>(c);
    out += byte < 0x20 || byte == 0x7f ? fmt::format("\\x{:02x}", byte) : std::string(1, c);
  }
  if (text.size() > 64) out += "...";
  return out;
}

std::string string_field(const json& object, const char* key) {
  const auto found = object.find(key);
  if (found == object.end() || !found->is_string()) return {};
  return found->get<std::string>();
}

// Patroni 3 writes the port as a number; a string of digits is taken too.
int port_field(const json& object) {
  const auto found = object.find("port");
  if (found == object.end()) return 0;
  long long port = 0;
  if (found->is_number_integer()) {
    port = found->get<long long>();
  } else if (found->is_string()) {
    const std::string text = found->get<std::string>();
    if (text.empty() || text.size() > 5 ||
        text.find_first_not_of("0123456789") != std::string::npos)
      return 0;
    port = std::stoll(text);
  }
  return port >= 1 && port <= 65535 ? static_cast<int>(port) : 0;
}

// What a JSON value is, in a message's words.
std::string_view kind_of(const json& value) {
  switch (value.type()) {
    case json::value_t::object:
      return "an object";
    case json::value_t::array:
      return "a list";
    case json::value_t::string:
      return "a string";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::null:
      return "null";
    default:
      return "a number";
  }
}

bool is_leader(std::string_view role) {
  return role == "leader" || role == "master" || role == "primary";
}

}  // namespace

ClusterAnswer parse_cluster_answer(std::string_view body) {
  // Without exceptions: a parse error is an answer like any other, not a failure of the daemon.
  const json document = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (document.is_discarded())
    throw MalformedAnswer(fmt::format("the answer is not JSON ({} bytes, starting '{}')",
                                      body.size(), shown(body.substr(0, 16))));
  if (!document.is_object())
    throw MalformedAnswer(
        fmt::format("the answer is JSON but not an object ({})", kind_of(document)));
  const auto members = document.find("members");
  if (members == document.end())
    throw MalformedAnswer("the answer has no \"members\" (is this Patroni's /cluster?)");
  if (!members->is_array())
    throw MalformedAnswer(fmt::format("\"members\" is {}, not a list", kind_of(*members)));
  ClusterAnswer answer;
  std::unordered_set<std::string> names;
  std::size_t index = 0;
  for (const json& member : *members) {
    const std::string at = fmt::format("members[{}]", index++);
    if (!member.is_object()) {
      answer.skipped.push_back(at + " is not an object");
      continue;
    }
    PatroniMember m{string_field(member, "name"), string_field(member, "host"), port_field(member),
                    string_field(member, "role")};
    if (m.name.empty()) {
      answer.skipped.push_back(at + " has no name");
      continue;
    }
    const std::string who = fmt::format("member '{}'", shown(m.name));
    if (m.host.empty() || m.port == 0) {
      // A member still starting, or one whose PostgreSQL Patroni cannot reach, is listed
      // without them: there is nothing to connect to yet.
      answer.skipped.push_back(who + " has no host and port to connect to");
      continue;
    }
    if (!names.insert(m.name).second) {
      answer.skipped.push_back(who + " is listed twice; the first is watched");
      continue;
    }
    if (answer.members.size() == kMaxMembers) {
      answer.skipped.push_back(
          fmt::format("{} and the members after it: more than {} members", who, kMaxMembers));
      break;
    }
    if (is_leader(m.role) && answer.leader.empty()) answer.leader = m.name;
    answer.members.push_back(std::move(m));
  }
  return answer;
}

}  // namespace pgwd::daemon
