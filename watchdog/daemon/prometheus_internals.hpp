#pragma once

// The one place that reads prometheus-cpp 1.0's private members: a Registry's families and their
// mutex, a Family's series, help text and mutex (prometheus/registry.h, prometheus/family.h).
//
// Why: the only public way to read a registry is Registry::Collect(), which copies every series
// three times into ClientMetric structs (Family::Collect builds them, and its `return {family}`
// copies the family into an initializer_list and from there into the vector), each with a
// vector of labels and their strings. At 1,000 targets (64,000 series) that alone took 15-37 ms
// of a scrape, over the 20 ms budget on its own (docs/design.md §12). Walking the same
// containers under the same mutexes, in the same order, and writing the text straight from them
// costs a fraction of that, and prints the same bytes: a unit test compares this path with
// TextSerializer(Registry::Collect()) on the daemon's own registry.
//
// How: an explicit template instantiation may name private members ([temp.spec.general]/6), and
// a pointer to member obtained there can be handed out through a friend function. The member
// types are spelled out below: a prometheus-cpp whose members differ does not compile.
// Everything here has internal linkage (an unnamed namespace): an explicit instantiation
// definition may appear only once in a program, and each includer gets its own.
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/summary.h>

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace pgwd::daemon::prometheus_internals {
namespace {

template <typename Tag, typename Tag::type Member>
struct Expose {
  friend typename Tag::type member_of(Tag) { return Member; }
};

#define PGWD_EXPOSE_MEMBER(TAG, TYPE, MEMBER) \
  struct TAG {                                \
    using type = TYPE;                        \
    friend type member_of(TAG);               \
  };                                          \
  template struct Expose<TAG, MEMBER>

template <typename T>
using FamilyList = std::vector<std::unique_ptr<prometheus::Family<T>>>;
template <typename T>
using SeriesMap =
    std::unordered_map<prometheus::Labels, std::unique_ptr<T>, prometheus::detail::LabelHasher>;

PGWD_EXPOSE_MEMBER(RegistryMutex, std::mutex prometheus::Registry::*,
                   &prometheus::Registry::mutex_);
PGWD_EXPOSE_MEMBER(RegistryCounters, FamilyList<prometheus::Counter> prometheus::Registry::*,
                   &prometheus::Registry::counters_);
PGWD_EXPOSE_MEMBER(RegistryGauges, FamilyList<prometheus::Gauge> prometheus::Registry::*,
                   &prometheus::Registry::gauges_);
PGWD_EXPOSE_MEMBER(RegistryHistograms, FamilyList<prometheus::Histogram> prometheus::Registry::*,
                   &prometheus::Registry::histograms_);
PGWD_EXPOSE_MEMBER(RegistrySummaries, FamilyList<prometheus::Summary> prometheus::Registry::*,
                   &prometheus::Registry::summaries_);

#define PGWD_EXPOSE_FAMILY(T)                                                                    \
  PGWD_EXPOSE_MEMBER(T##FamilyMutex, std::mutex prometheus::Family<prometheus::T>::*,            \
                     &prometheus::Family<prometheus::T>::mutex_);                                \
  PGWD_EXPOSE_MEMBER(T##FamilyHelp, const std::string prometheus::Family<prometheus::T>::*,      \
                     &prometheus::Family<prometheus::T>::help_);                                 \
  PGWD_EXPOSE_MEMBER(T##FamilySeries,                                                            \
                     SeriesMap<prometheus::T> prometheus::Family<prometheus::T>::*,              \
                     &prometheus::Family<prometheus::T>::metrics_);                              \
  inline std::mutex& mutex_of(const prometheus::Family<prometheus::T>& family) {                 \
    /* mutable in Family, which a pointer to member does not carry */                            \
    return const_cast<std::mutex&>(family.*member_of(T##FamilyMutex{}));                         \
  }                                                                                              \
  inline const std::string& help_of(const prometheus::Family<prometheus::T>& family) {           \
    return family.*member_of(T##FamilyHelp{});                                                   \
  }                                                                                              \
  inline const SeriesMap<prometheus::T>& series_of(const prometheus::Family<prometheus::T>& f) { \
    return f.*member_of(T##FamilySeries{});                                                      \
  }

PGWD_EXPOSE_FAMILY(Counter)
PGWD_EXPOSE_FAMILY(Gauge)
PGWD_EXPOSE_FAMILY(Histogram)
PGWD_EXPOSE_FAMILY(Summary)

#undef PGWD_EXPOSE_FAMILY
#undef PGWD_EXPOSE_MEMBER

inline std::mutex& mutex_of(const prometheus::Registry& registry) {
  return const_cast<std::mutex&>(registry.*member_of(RegistryMutex{}));
}
inline const FamilyList<prometheus::Counter>& families_of(const prometheus::Registry& registry,
                                                          const prometheus::Counter*) {
  return registry.*member_of(RegistryCounters{});
}
inline const FamilyList<prometheus::Gauge>& families_of(const prometheus::Registry& registry,
                                                        const prometheus::Gauge*) {
  return registry.*member_of(RegistryGauges{});
}
inline const FamilyList<prometheus::Histogram>& families_of(const prometheus::Registry& registry,
                                                            const prometheus::Histogram*) {
  return registry.*member_of(RegistryHistograms{});
}
inline const FamilyList<prometheus::Summary>& families_of(const prometheus::Registry& registry,
                                                          const prometheus::Summary*) {
  return registry.*member_of(RegistrySummaries{});
}

}  // namespace
}  // namespace pgwd::daemon::prometheus_internals
