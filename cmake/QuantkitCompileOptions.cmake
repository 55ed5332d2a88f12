# Flags every quantkit target is built with. The numerics contract forbids
# floating-point contraction (FMA) and fast-math: results must not depend on
# what the compiler decides to fuse.
function(quantkit_target_options target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Werror -Wshadow
    -ffp-contract=off -fno-fast-math)
endfunction()
