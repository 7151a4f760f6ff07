// A minimal test harness: CHECK / CHECK_EQ count passes and failures and
// print the failing expression; finish() prints the tally and gives the exit
// status (non-zero on any failure) so that ctest sees it.
#pragma once

#include <cstdio>
#include <sstream>
#include <string>

namespace check {

inline int& passed() {
  static int n = 0;
  return n;
}
inline int& failed() {
  static int n = 0;
  return n;
}

inline void record(bool ok, const char* file, int line, const std::string& what) {
  if (ok) {
    ++passed();
  } else {
    ++failed();
    std::fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, what.c_str());
  }
}

template <typename T>
std::string show(const T& v) {
  std::ostringstream os;
  os << v;
  return os.str();
}
inline std::string show(const std::string& v) { return "\"" + v + "\""; }
inline std::string show(const char* v) { return v ? "\"" + std::string(v) + "\"" : "(null)"; }
inline std::string show(bool v) { return v ? "true" : "false"; }
inline std::string show(unsigned char v) { return std::to_string(v); }
inline std::string show(signed char v) { return std::to_string(v); }

inline int finish() {
  std::printf("%d passed, %d failed\n", passed(), failed());
  return failed() == 0 ? 0 : 1;
}

}  // namespace check

#define CHECK(cond) ::check::record(static_cast<bool>(cond), __FILE__, __LINE__, #cond)

#define CHECK_EQ(a, b)                                                                   \
  do {                                                                                   \
    const auto& check_a_ = (a);                                                          \
    const auto& check_b_ = (b);                                                          \
    bool check_ok_ = (check_a_ == check_b_);                                             \
    ::check::record(check_ok_, __FILE__, __LINE__,                                       \
                    check_ok_ ? std::string()                                            \
                              : std::string(#a " == " #b ": ") + ::check::show(check_a_) + \
                                    " vs " + ::check::show(check_b_));                   \
  } while (0)
