#include "pg/conninfo.hpp"

#include <libpq-fe.h>

#include "pg/handles.hpp"
#include "pg/secrets.hpp"
#include "pgwd/watchdog.hpp"

namespace pgwd {

Conninfo Conninfo::parse(std::string_view dsn) {
  const std::string text(dsn);
  char* raw_error = nullptr;
  ConninfoOptionsPtr options(PQconninfoParse(text.c_str(), &raw_error));
  if (!options) {
    std::string error = raw_error ? raw_error : "out of memory";
    PQfreemem(raw_error);
    while (!error.empty() && (error.back() == '\n' || error.back() == ' ')) error.pop_back();
    throw InvalidTarget("malformed conninfo: " + redact_secrets(error, dsn));
  }
  Conninfo parsed;
  for (const PQconninfoOption* o = options.get(); o->keyword; ++o)
    if (o->val) parsed.entries_.emplace_back(o->keyword, o->val);
  return parsed;
}

std::optional<std::string> Conninfo::get(std::string_view key) const {
  for (const auto& [k, v] : entries_)
    if (k == key) return v;
  return std::nullopt;
}

void Conninfo::set(std::string_view key, std::string value) {
  for (auto& [k, v] : entries_)
    if (k == key) {
      v = std::move(value);
      return;
    }
  entries_.emplace_back(std::string(key), std::move(value));
}

void Conninfo::set_default(std::string_view key, std::string value) {
  if (!get(key)) entries_.emplace_back(std::string(key), std::move(value));
}

void Conninfo::erase(std::string_view key) {
  std::erase_if(entries_, [&](const auto& entry) { return entry.first == key; });
}

ConnectParams Conninfo::params() const {
  ConnectParams p;
  for (const auto& [k, v] : entries_) {
    p.keywords.push_back(k.c_str());
    p.values.push_back(v.c_str());
  }
  p.keywords.push_back(nullptr);
  p.values.push_back(nullptr);
  return p;
}

std::string Conninfo::render(bool hide_password) const {
  std::string out;
  for (const auto& [k, v] : entries_) {
    if (!out.empty()) out += ' ';
    out += k;
    out += "='";
    if (k == "password" && hide_password) {
      out += "***";
    } else {
      for (char c : v) {
        if (c == '\'' || c == '\\') out += '\\';
        out += c;
      }
    }
    out += '\'';
  }
  return out;
}

std::string Conninfo::redacted() const { return render(true); }

std::string Conninfo::text() const { return render(false); }

}  // namespace pgwd
