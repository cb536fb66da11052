// Naming, matching and syncing the sockets held in systemd's fd store.

#include <preforkd/core/fd_store_names.hpp>

#include <algorithm>
#include <charconv>
#include <tuple>

namespace preforkd::fd_store {

std::optional<std::string> name_of(const SocketPlace& place) {
  std::string name(name_prefix);
  name.append(place.listener).append(".");
  if (place.slot) {
    name.append(std::to_string(*place.slot));
  } else {
    name.append(shared_suffix);
  }
  if (name.size() > max_name_length) return std::nullopt;
  return name;
}

std::optional<SocketPlace> parse_name(std::string_view name) {
  if (!name.starts_with(name_prefix)) return std::nullopt;
  name.remove_prefix(name_prefix.size());
  const auto dot = name.rfind('.');
  if (dot == std::string_view::npos || dot == 0) return std::nullopt;
  const std::string_view listener = name.substr(0, dot);
  const std::string_view suffix = name.substr(dot + 1);
  SocketPlace place{std::string(listener), std::nullopt};
  if (suffix == shared_suffix) return place;
  // Digits only, no leading zero: one spelling per slot.
  if (suffix.empty() || suffix.size() > 9 || (suffix.size() > 1 && suffix.front() == '0') ||
      !std::ranges::all_of(suffix, [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  int slot = 0;
  const auto [end, ec] = std::from_chars(suffix.data(), suffix.data() + suffix.size(), slot);
  if (ec != std::errc{} || end != suffix.data() + suffix.size()) return std::nullopt;
  place.slot = slot;
  return place;
}

namespace {

// A decimal number without sign or leading zero, as systemd writes it.
template <class T>
std::optional<T> parse_decimal(std::string_view text) {
  if (text.empty() || text.size() > 18 || (text.size() > 1 && text.front() == '0') ||
      !std::ranges::all_of(text, [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  T value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// "a:b::c" -> {"a", "b", "", "c"}: empty names kept, as systemd splits it.
std::vector<std::string> split_names(std::string_view text) {
  std::vector<std::string> out;
  for (std::size_t start = 0;;) {
    const auto colon = text.find(':', start);
    out.emplace_back(text.substr(start, colon == std::string_view::npos ? std::string_view::npos : colon - start));
    if (colon == std::string_view::npos) return out;
    start = colon + 1;
  }
}

}  // namespace

PassedFds passed_fds(const ListenEnv& env, long self, const std::vector<int>& open) {
  PassedFds out;
  if (!env.fds) return out;  // nothing passed (a lone LISTEN_PID or LISTEN_FDNAMES names no fd)
  const auto count = parse_decimal<int>(*env.fds);
  if (!count || *count <= 0 || *count > 1 << 20) {
    out.ignored = "LISTEN_FDS='" + *env.fds + "' is not a count of fds";
    return out;
  }
  const int first = listen_fds_start;
  const int last = first + *count - 1;
  for (int fd : open)
    if (fd >= first && fd <= last) out.stray.push_back(fd);
  const std::string passed = "LISTEN_FDS=" + *env.fds;
  if (!env.pid) {
    out.ignored = passed + " without LISTEN_PID";
  } else if (const auto pid = parse_decimal<long>(*env.pid); !pid || *pid != self) {
    out.ignored = "LISTEN_PID=" + *env.pid + " is not preforkd's pid " + std::to_string(self);
  } else if (static_cast<int>(out.stray.size()) != *count) {
    int missing = first;
    for (int fd : out.stray) {
      if (fd != missing) break;
      ++missing;
    }
    out.ignored = passed + " but fd " + std::to_string(missing) + " is not open";
  } else if (env.names && split_names(*env.names).size() != static_cast<std::size_t>(*count)) {
    out.ignored = "LISTEN_FDNAMES='" + *env.names + "' has " + std::to_string(split_names(*env.names).size()) +
                  " names for " + passed;
  }
  if (out.ignored) return out;
  out.count = *count;
  out.names = env.names ? split_names(*env.names) : std::vector<std::string>(static_cast<std::size_t>(*count), "unknown");
  out.stray.clear();
  return out;
}

Matching match_inherited(const std::vector<std::string>& names, const std::vector<ListenerShape>& listeners,
                         int slots, const SocketCheck& check) {
  Matching m;
  m.taken.resize(listeners.size());
  // Per listener: the candidate for each slot (per-slot) or the shared socket.
  std::vector<std::map<int, std::size_t>> candidates(listeners.size());
  const auto drop = [&](std::size_t i, std::string why) { m.dropped.push_back({i, std::move(why)}); };
  for (std::size_t i = 0; i < names.size(); ++i) {
    const auto place = parse_name(names[i]);
    if (!place) {
      m.foreign.push_back(i);
      continue;
    }
    const auto it = std::ranges::find(listeners, place->listener, &ListenerShape::name);
    if (it == listeners.end()) {
      drop(i, "the config has no listener '" + place->listener + "'");
      continue;
    }
    const auto l = static_cast<std::size_t>(it - listeners.begin());
    if (it->per_slot != place->slot.has_value()) {
      drop(i, it->per_slot ? "listener '" + it->name + "' has one socket per slot now, this one was shared"
                           : "listener '" + it->name + "' has one shared socket now, this one was a slot's");
      continue;
    }
    const int slot = place->slot.value_or(0);
    if (slot >= slots) {
      drop(i, "slot " + std::to_string(slot) + " is beyond the config's " + std::to_string(slots) + " slots");
      continue;
    }
    if (candidates[l].contains(slot)) {
      drop(i, "a second socket named '" + names[i] + "'");
      continue;
    }
    if (auto why = check(i, l)) {
      drop(i, *why);
      continue;
    }
    candidates[l][slot] = i;
  }
  for (std::size_t l = 0; l < listeners.size(); ++l) {
    const auto& found = candidates[l];
    // std::map iterates in slot order: gap-free means the k-th entry is slot k.
    int expected = 0;
    bool gap = false;
    for (const auto& [slot, index] : found) gap = gap || slot != expected++;
    if (!gap) {
      for (const auto& [slot, index] : found) m.taken[l].push_back(index);
      continue;
    }
    int missing = 0;
    while (found.contains(missing)) ++missing;
    for (const auto& [slot, index] : found)
      drop(index, "slot " + std::to_string(missing) + " of listener '" + listeners[l].name +
                      "' is missing from the store, so the order of its group is unknown");
  }
  std::ranges::sort(m.dropped, {}, &Dropped::inherited);
  return m;
}

SyncPlan plan_sync(const std::map<std::string, std::uint64_t>& stored,
                   const std::map<std::string, std::uint64_t>& wanted) {
  SyncPlan plan;
  for (const auto& [name, id] : stored) {
    const auto w = wanted.find(name);
    if (w == wanted.end() || w->second != id) plan.remove.push_back(name);
  }
  for (const auto& [name, id] : wanted) {
    const auto s = stored.find(name);
    if (s == stored.end() || s->second != id) plan.add.push_back(name);
  }
  // Highest slot first within a listener; names of other schemes last, as they are.
  const auto order = [](const std::string& name) {
    const auto place = parse_name(name);
    if (!place) return std::make_tuple(1, std::string(), 0, name);
    return std::make_tuple(0, place->listener, -place->slot.value_or(-1), name);
  };
  std::ranges::sort(plan.remove, [&](const std::string& a, const std::string& b) { return order(a) < order(b); });
  return plan;
}

}  // namespace preforkd::fd_store
