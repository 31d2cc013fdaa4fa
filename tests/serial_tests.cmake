# Read by ctest after the discovered tests are defined (TEST_INCLUDE_FILES in CMakeLists.txt).
# The two 1000-connection storm tests each restart 1000 backends on the machine's 2 cores and
# bound how long reconnecting takes: run beside each other, or beside anything else, they measure
# the CPU queue instead. Each runs alone.
set_tests_properties(
  "integration:storm: 1000 connections through pg_ctl restart -m fast - all back within seconds with jittered attempts and a responsive loop"
  "integration:storm: 1000 connections with scram-sha-256 through pg_ctl restart -m fast"
  PROPERTIES RUN_SERIAL TRUE)
# The HTTP load tests measure scrape latency percentiles: beside other tests they would measure
# the CPU queue.
set_tests_properties(
  "integration:http load: 100 half-open clients do not starve scrapes (p99 under 50 ms)"
  "integration:http load: 50 concurrent scrapers keep p99 under 50 ms"
  PROPERTIES RUN_SERIAL TRUE)
