// Topics (publish/subscribe) of one server: which open connections listen to
// which topic names. The server publishes a message to a topic by building
// its frame once and queueing it on every subscriber (see server.cc).
//
// Threading: none of its own. The server keeps its registry under the same
// mutex as its table of open connections, so that a subscription is only
// ever added for a connection that is open, and removing a closed
// connection's subscriptions cannot race with adding one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace wsengine {

class TopicRegistry {
 public:
  // Adds conn to topic; returns the topic's subscriber count afterwards.
  // `added` (optional) says whether conn was not subscribed before.
  size_t subscribe(uint64_t conn, const std::string& topic, bool* added = nullptr);
  // Removes conn from topic; returns the topic's subscriber count afterwards
  // (a topic without subscribers is forgotten).
  size_t unsubscribe(uint64_t conn, const std::string& topic, bool* removed = nullptr);
  // Every subscription of conn ends (its connection closed). Returns the
  // topics that lost their last subscriber.
  std::vector<std::string> removeConnection(uint64_t conn);
  // The subscribers of topic, in ascending id order (connection ids grow
  // with accept order, so a publish reaches older connections first).
  std::vector<uint64_t> subscribers(const std::string& topic) const;
  size_t count(const std::string& topic) const;
  // Every topic with at least one subscriber, with its count, sorted by name.
  std::vector<std::pair<std::string, size_t>> topics() const;
  // The topics conn is subscribed to, sorted.
  std::vector<std::string> topicsOf(uint64_t conn) const;
  bool empty() const { return byTopic_.empty(); }
  void clear();

 private:
  std::unordered_map<std::string, std::unordered_set<uint64_t>> byTopic_;
  std::unordered_map<uint64_t, std::unordered_set<std::string>> byConn_;
};

}  // namespace wsengine
