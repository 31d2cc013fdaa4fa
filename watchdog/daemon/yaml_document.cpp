#include "daemon/yaml_document.hpp"

#include <yaml-cpp/eventhandler.h>

#include <algorithm>
#include <cstdio>
#include <sstream>
#include <vector>

#include "daemon/file_reading.hpp"
#include "text/utf8.hpp"

namespace pgwd::daemon {
namespace {

int line_at(std::string_view text, std::size_t offset) {
  return static_cast<int>(
             std::count(text.begin(), text.begin() + static_cast<long>(offset), '\n')) +
         1;
}

// YAML 1.2's c-printable: what a YAML stream may contain at all.
bool is_yaml_printable(char32_t c) {
  return c == 0x9 || c == 0xa || c == 0xd || (c >= 0x20 && c <= 0x7e) || c == 0x85 ||
         (c >= 0xa0 && c <= 0xd7ff) || (c >= 0xe000 && c <= 0xfffd) ||
         (c >= 0x10000 && c <= 0x10ffff);
}

std::string code_point_name(char32_t c) {
  char name[16];
  std::snprintf(name, sizeof name, "U+%04X", static_cast<unsigned>(c));
  return name;
}

// Checked before yaml-cpp sees the text: it would otherwise accept some of it silently, and echo
// raw bytes of the rest back in its messages.
void check_yaml_text(const ValueReader& report, std::string_view text) {
  for (std::size_t at = 0; at < text.size();) {
    const Utf8CodePoint next = decode_utf8(text, at);
    if (next.length == 0)
      report.fail(line_at(text, at), "not valid UTF-8 at byte offset " + std::to_string(at) +
                                         " (a config file must be UTF-8)");
    if (!is_yaml_printable(next.code_point))
      report.fail(line_at(text, at), "character " + code_point_name(next.code_point) +
                                         " at byte offset " + std::to_string(at) +
                                         " is not allowed in YAML (write it as an escape in a "
                                         "double-quoted string)");
    at += next.length;
  }
}

// Walks the parser's events without building anything, to bound what the document stands for
// before yaml-cpp builds it: each node costs 1 plus its scalar's bytes, and an alias costs what
// its anchor's node cost (so a chain of aliases of aliases is counted at its full expansion).
// yaml-cpp shares an aliased node rather than copying it, but whatever walks the tree later (this
// loader, --check-config's output) pays the full expansion.
class ExpansionMeter final : public YAML::EventHandler {
 public:
  explicit ExpansionMeter(std::size_t budget) : budget_(budget) {}

  /// Thrown from inside the parser when the budget is exceeded; the mark says where.
  struct TooLarge {
    YAML::Mark mark;
  };

  void start_document() {
    total_ = 0;
    anchors_.clear();
    open_.clear();
    document_start_ = -1;
    has_content_ = false;
  }
  int document_start() const { return document_start_; }
  int document_line() const { return document_line_; }
  bool has_content() const { return has_content_; }

  void OnDocumentStart(const YAML::Mark& mark) override {
    document_start_ = mark.pos;
    document_line_ = mark.line;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    add(mark, 1);  // an empty document is a lone null: not content
    remember(anchor, 1);
  }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    node(mark, 0, anchor < anchors_.size() ? anchors_[anchor] : 1);
  }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                const std::string& value) override {
    node(mark, anchor, 1 + value.size());
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    start_collection(mark, anchor);
  }
  void OnSequenceEnd() override { end_collection(); }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    start_collection(mark, anchor);
  }
  void OnMapEnd() override { end_collection(); }

 private:
  struct Open {
    YAML::anchor_t anchor;
    std::size_t total_at_start;
  };

  void add(const YAML::Mark& mark, std::size_t cost) {
    // Saturating: costs of nested aliases grow exponentially.
    total_ = cost > budget_ - std::min(total_, budget_) ? budget_ + 1 : total_ + cost;
    if (total_ > budget_) throw TooLarge{mark};
  }
  void remember(YAML::anchor_t anchor, std::size_t cost) {
    if (anchor == 0) return;  // 0: no anchor
    if (anchors_.size() <= anchor) anchors_.resize(anchor + 1, 1);
    anchors_[anchor] = cost;
  }
  void node(const YAML::Mark& mark, YAML::anchor_t anchor, std::size_t cost) {
    has_content_ = true;
    add(mark, cost);
    remember(anchor, cost);
  }
  void start_collection(const YAML::Mark& mark, YAML::anchor_t anchor) {
    has_content_ = true;
    open_.push_back({anchor, total_});
    add(mark, 1);
  }
  void end_collection() {
    if (open_.empty()) return;
    const Open done = open_.back();
    open_.pop_back();
    remember(done.anchor, total_ - done.total_at_start);
  }

  std::size_t budget_;
  std::size_t total_ = 0;
  std::vector<std::size_t> anchors_;
  std::vector<Open> open_;
  int document_start_ = -1;
  int document_line_ = 0;
  bool has_content_ = false;
};

// yaml-cpp 0.7's LoadAll never ends on some input (a lone ',': yaml-cpp #1040, fixed upstream
// after 0.7): the parser reports an empty document without consuming anything, again and again.
// So documents are walked one at a time here, and one that starts where the previous one started
// is a syntax error. Only the first document may hold anything: a later one must be empty (a
// trailing '---').
constexpr int kMaxDocuments = 16;

void check_documents(const ValueReader& report, std::string_view yaml_text, std::size_t max_bytes) {
  std::istringstream input{std::string(yaml_text)};
  YAML::Parser parser(input);
  ExpansionMeter meter(max_bytes);
  int previous_start = -1;
  for (int document = 0;; ++document) {
    meter.start_document();
    try {
      if (!parser.HandleNextDocument(meter)) return;
    } catch (const ExpansionMeter::TooLarge& e) {
      report.fail(std::max(e.mark.line, 0) + 1, "the document is larger than " +
                                                    std::to_string(max_bytes / (1024 * 1024)) +
                                                    " MiB once its YAML aliases are expanded");
    }
    const int line = std::max(meter.document_line(), 0) + 1;
    if (meter.document_start() <= previous_start) {
      const auto at = static_cast<std::size_t>(std::max(meter.document_start(), 0));
      const std::string token =
          at < yaml_text.size() ? quoted_value(yaml_text.substr(at, 1)) : "the end";
      report.fail(line, "YAML syntax error: unexpected " + token);
    }
    previous_start = meter.document_start();
    if (document > 0 && meter.has_content())
      report.fail(line, "only one YAML document is allowed (found a second one)");
    if (document == kMaxDocuments)
      report.fail(line, "more than " + std::to_string(kMaxDocuments) + " YAML documents");
  }
}

}  // namespace

YAML::Node load_document(const ValueReader& report, std::string_view yaml_text,
                         std::size_t max_bytes) {
  if (yaml_text.size() > max_bytes)
    report.fail(1, "larger than " + std::to_string(max_bytes / (1024 * 1024)) + " MiB (" +
                       std::to_string(yaml_text.size()) + " bytes)");
  check_yaml_text(report, yaml_text);
  try {
    check_documents(report, yaml_text, max_bytes);
    return YAML::Load(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    // e.what() would repeat the position in yaml-cpp's own words; the message has it already.
    report.fail(std::max(e.mark.line, 0) + 1,
                "YAML syntax error: " + escape_control_characters(e.msg));
  }
}

std::optional<std::size_t> find_invalid_utf8(std::string_view text) {
  for (std::size_t at = 0; at < text.size();) {
    const Utf8CodePoint next = decode_utf8(text, at);
    if (next.length == 0) return at;
    at += next.length;
  }
  return std::nullopt;
}

std::string yaml_quoted(std::string_view text) {
  std::string quoted = "\"";
  for (std::size_t at = 0; at < text.size();) {
    const Utf8CodePoint next = decode_utf8(text, at);
    const char32_t c = next.code_point;
    char escape[16];
    if (next.length == 0) {
      std::snprintf(escape, sizeof escape, "\\x%02X", static_cast<unsigned char>(text[at]));
      quoted += escape;
      ++at;
      continue;
    }
    if (c == '"' || c == '\\') {
      quoted += '\\';
      quoted += static_cast<char>(c);
    } else if ((c >= 0x20 && c <= 0x7e) ||
               (c >= 0xa0 && is_yaml_printable(c) && c != 0x2028 && c != 0x2029 && c != 0xfeff)) {
      quoted.append(text.substr(at, next.length));  // line and paragraph separators, BOM: escaped
    } else {
      std::snprintf(escape, sizeof escape,
                    c <= 0xff ? "\\x%02X" : (c <= 0xffff ? "\\u%04X" : "\\U%08X"),
                    static_cast<unsigned>(c));
      quoted += escape;
    }
    at += next.length;
  }
  return quoted + '"';
}

}  // namespace pgwd::daemon
