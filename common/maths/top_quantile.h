// Exact quantiles from the top of a population (SPEC.md §2 step 2): what calibrate's bounded
// memory and the sharded run's tail merge (common/results/shard_files.h) both rest on.
//
// The numpy "linear" quantile at level L of n values v_0 <= ... <= v_{n-1} reads only the two
// values at ranks floor((n-1)L) and the next one, so it is determined by the top
// TopValuesNeeded(n, 1 - L) values. Any multiset that holds a population's top K values (K at
// least that many) gives the same quantile, bit for bit: a shard's top K, or the top K of the
// union of every shard's top K, is the whole dataset's top K.
#pragma once

#include <cstdint>
#include <vector>

namespace nd {

// How many of the top values the quantile at level (1 - q) of n values needs: n -
// floor((n-1)(1-q)). 0 when n <= 0.
int64_t TopValuesNeeded(int64_t n, double q);

// The numpy "linear" quantile of `sorted_desc_top` (the top values of a population of n values,
// sorted descending) at level `level`, evaluated as numpy's _lerp does (a + (b − a)·g when
// g < 0.5, else b − (b − a)(1 − g)). REQUIRES: enough top values (n − floor(level·(n−1))).
double LinearQuantileFromTop(const std::vector<float>& sorted_desc_top, int64_t n, double level);

}  // namespace nd
