#include "pg/secrets.hpp"

#include <algorithm>
#include <cctype>
#include <regex>

namespace pgwd {
namespace {

std::string percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

void add(std::vector<std::string>& out, std::string candidate) {
  if (!candidate.empty() && std::find(out.begin(), out.end(), candidate) == out.end())
    out.push_back(std::move(candidate));
}

}  // namespace

std::vector<std::string> passwords_in(std::string_view dsn) {
  std::vector<std::string> found;
  const std::string text(dsn);
  // key=value form: password = 'quoted \' value' | bare-value
  static const std::regex keyword(R"(password\s*=\s*('((?:[^'\\]|\\.)*)'?|(\S+)))",
                                  std::regex::icase);
  for (auto it = std::sregex_iterator(text.begin(), text.end(), keyword);
       it != std::sregex_iterator(); ++it) {
    const auto& m = *it;
    if (m[2].matched) {
      std::string unescaped;
      const std::string quoted = m[2].str();
      for (std::size_t i = 0; i < quoted.size(); ++i)
        unescaped += quoted[i] == '\\' && i + 1 < quoted.size() ? quoted[++i] : quoted[i];
      add(found, quoted);
      add(found, unescaped);
    }
    if (m[3].matched) {
      add(found, m[3].str());
      add(found, percent_decode(m[3].str()));  // URI query parameter
      // A query parameter ends at '&'.
      const std::string bare = m[3].str();
      add(found, bare.substr(0, bare.find('&')));
      add(found, percent_decode(bare.substr(0, bare.find('&'))));
    }
  }
  // URI userinfo: scheme://user:secret@host
  static const std::regex userinfo(R"(://[^:/@?\s]*:([^@/?\s]*)@)");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), userinfo);
       it != std::sregex_iterator(); ++it) {
    add(found, (*it)[1].str());
    add(found, percent_decode((*it)[1].str()));
  }
  // Longest first, so that a password containing another candidate is replaced whole.
  std::sort(found.begin(), found.end(),
            [](const auto& a, const auto& b) { return a.size() > b.size(); });
  return found;
}

std::string redact_secrets(std::string_view text, std::string_view dsn) {
  // Every message a connection reports (the FATAL on the way to on_down among them) is cleaned
  // against the same DSN, and passwords_in's two regex scans were a quarter of the CPU from a
  // terminated backend's readiness to on_down (bench/README.md "Current figures"): the passwords of
  // the last DSN are kept, per thread. (An empty DSN starts it: it has none.)
  thread_local std::string memo_dsn;
  thread_local std::vector<std::string> memo_passwords;
  if (memo_dsn != dsn) {
    memo_passwords = passwords_in(dsn);
    memo_dsn.assign(dsn);
  }
  std::string out(text);
  for (const std::string& secret : memo_passwords) {
    for (std::size_t pos = out.find(secret); pos != std::string::npos;
         pos = out.find(secret, pos + 3))
      out.replace(pos, secret.size(), "***");
  }
  return out;
}

}  // namespace pgwd
