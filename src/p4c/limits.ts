/**
 * The bounds the P4 compiler holds every program to. A program is input the compiler does not
 * trust: without these a one-line typo, a deep nesting, a huge header stack or a macro that
 * doubles itself would exhaust the stack, the heap or the clock instead of being an error.
 * Each bound is far above what a real v1model program needs (the shipped samples use a few
 * percent of any of them); crossing one is a `P4CompileError` of kind `limit` at the
 * file:line:col where it was crossed.
 */

/** Bytes of one source file (the program or any file it includes). */
export const MAX_SOURCE_BYTES = 4 * 1024 * 1024;

/** Tokens after preprocessing (all files, all macro expansions). */
export const MAX_TOKENS = 1_000_000;

/** Tokens one use of a macro may expand to (a `#define` chain that doubles stops here). */
export const MAX_MACRO_TOKENS = 65_536;

/** Files open at once through nested `#include`s. */
export const MAX_INCLUDE_DEPTH = 32;

/** Macros expanded inside one another (`#define A B`, `#define B C`, ...). */
export const MAX_MACRO_DEPTH = 128;

/**
 * Levels of nesting in the syntax: parentheses, unary operators, chained binary operators,
 * member/index chains, blocks, if/else chains, type arguments. The type checker and the
 * lowering walk the tree recursively, so this also bounds their stack depth.
 */
export const MAX_NESTING = 256;

/** Width of a `bit<W>` / `int<W>` / `varbit<W>` type or a `Ww` / `Ws` literal. */
export const MAX_BIT_WIDTH = 2048;

/** Elements of one header stack (`h_t[N]`). */
export const MAX_HEADER_STACK_SIZE = 1024;

/**
 * Values laid out in the whole program: header instances, stack elements, struct members and
 * metadata fields (a struct of structs counts every member it flattens to).
 */
export const MAX_INSTANCES = 65_536;

/**
 * Entries of a counter, register or meter array, a value set or a table: the switch allocates
 * arrays of this size, so it bounds the memory a program may claim before any packet.
 */
export const MAX_ARRAY_SIZE = 1 << 20;
