#include "io/json_parse.h"

#include <unordered_set>
#include <vector>

#include "core/error.h"

namespace amskv::io {

namespace {

using nlohmann::json;

// A key as it appears in a message: hostile keys can be megabytes long.
std::string shorten(const std::string& key) { return key.size() <= 40 ? key : key.substr(0, 37) + "..."; }

// One open array or object while parsing: the keys seen so far (objects) and where it sits, for messages.
struct Frame {
  bool object = false;
  std::string name;  // "layers.3" style path of this container ("" for the root)
  std::unordered_set<std::string> keys;
  std::string last_key;
  size_t items = 0;  // array elements so far, to name them by index
};

class StrictParse {
 public:
  StrictParse(const std::string& source, const std::string& what) : source_(source), what_(what) {}

  // nlohmann's parser callback: sees every event with the nesting depth; returning true keeps the value.
  bool operator()(int depth, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start: {
        const std::string name = child_name();
        if (depth >= kMaxJsonDepth)
          fail(source_, ": ", what_, " nests arrays or objects deeper than ", kMaxJsonDepth, " levels (at ",
               name.empty() ? "the top" : name, ")");
        Frame f;
        f.object = event == json::parse_event_t::object_start;
        f.name = name;
        stack_.push_back(std::move(f));
        break;
      }
      case json::parse_event_t::key: {
        Frame& f = stack_.back();
        const auto& key = parsed.get_ref<const std::string&>();
        if (!f.keys.insert(key).second)
          fail(source_, ": ", what_, " has the key '", shorten(key), "' twice (in ",
               f.name.empty() ? "the top object" : f.name, "); JSON readers disagree on which one counts");
        f.last_key = key;
        break;
      }
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        stack_.pop_back();
        count_item();
        break;
      case json::parse_event_t::value:
        count_item();
        break;
    }
    return true;
  }

 private:
  // The path of the value about to start, from its parent's key or element count.
  std::string child_name() const {
    if (stack_.empty()) return "";
    const Frame& p = stack_.back();
    const std::string part = p.object ? shorten(p.last_key) : cat("[", p.items, "]");
    if (p.name.empty()) return part;
    return p.object ? p.name + "." + part : p.name + part;
  }
  void count_item() {
    if (!stack_.empty() && !stack_.back().object) ++stack_.back().items;
  }

  const std::string& source_;
  const std::string& what_;
  std::vector<Frame> stack_;
};

}  // namespace

nlohmann::json parse_json(std::string_view text, const std::string& source, const std::string& what) {
  StrictParse strict(source, what);
  try {
    // std::ref: the parser copies its callback, and the copy must be the one whose stack we keep.
    return json::parse(text.begin(), text.end(), json::parser_callback_t(std::ref(strict)));
  } catch (const json::exception& e) {
    fail(source, ": ", what, " is not valid JSON: ", e.what());
  }
}

}  // namespace amskv::io
