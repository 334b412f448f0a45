"""airspeed-velocity benchmarks of fastem against scikit-learn and the naive EM (see asv_bench/asv.conf.json)."""
