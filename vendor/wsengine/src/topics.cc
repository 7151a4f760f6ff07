#include "topics.h"

#include <algorithm>

namespace wsengine {

size_t TopicRegistry::subscribe(uint64_t conn, const std::string& topic, bool* added) {
  auto& subs = byTopic_[topic];
  bool fresh = subs.insert(conn).second;
  if (fresh) byConn_[conn].insert(topic);
  if (added) *added = fresh;
  return subs.size();
}

size_t TopicRegistry::unsubscribe(uint64_t conn, const std::string& topic, bool* removed) {
  if (removed) *removed = false;
  auto t = byTopic_.find(topic);
  if (t == byTopic_.end()) return 0;
  if (t->second.erase(conn) == 0) return t->second.size();
  if (removed) *removed = true;
  auto c = byConn_.find(conn);
  if (c != byConn_.end()) {
    c->second.erase(topic);
    if (c->second.empty()) byConn_.erase(c);
  }
  size_t left = t->second.size();
  if (left == 0) byTopic_.erase(t);
  return left;
}

std::vector<std::string> TopicRegistry::removeConnection(uint64_t conn) {
  std::vector<std::string> emptied;
  auto c = byConn_.find(conn);
  if (c == byConn_.end()) return emptied;
  for (const std::string& topic : c->second) {
    auto t = byTopic_.find(topic);
    if (t == byTopic_.end()) continue;
    t->second.erase(conn);
    if (t->second.empty()) {
      emptied.push_back(topic);
      byTopic_.erase(t);
    }
  }
  byConn_.erase(c);
  std::sort(emptied.begin(), emptied.end());
  return emptied;
}

std::vector<uint64_t> TopicRegistry::subscribers(const std::string& topic) const {
  std::vector<uint64_t> out;
  auto t = byTopic_.find(topic);
  if (t == byTopic_.end()) return out;
  out.assign(t->second.begin(), t->second.end());
  std::sort(out.begin(), out.end());
  return out;
}

size_t TopicRegistry::count(const std::string& topic) const {
  auto t = byTopic_.find(topic);
  return t == byTopic_.end() ? 0 : t->second.size();
}

std::vector<std::pair<std::string, size_t>> TopicRegistry::topics() const {
  std::vector<std::pair<std::string, size_t>> out;
  out.reserve(byTopic_.size());
  for (const auto& kv : byTopic_) out.emplace_back(kv.first, kv.second.size());
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> TopicRegistry::topicsOf(uint64_t conn) const {
  std::vector<std::string> out;
  auto c = byConn_.find(conn);
  if (c == byConn_.end()) return out;
  out.assign(c->second.begin(), c->second.end());
  std::sort(out.begin(), out.end());
  return out;
}

void TopicRegistry::clear() {
  byTopic_.clear();
  byConn_.clear();
}

}  // namespace wsengine
