// Describes a BTF type as a plain JS object tree so TypeScript can derive a struct codec:
//   { kind: 'int', name, size, signed, bool, bitOffset?, bits? }
//   { kind: 'struct' | 'union', name, size, members: [{ name, bitOffset, bitfieldSize, type }] }
//   { kind: 'array', size, count, element }
//   { kind: 'enum', name, size, signed }
//   { kind: 'typedef', name, size, type }   (kept: __be16/__be32 name network byte order)
//   { kind: 'ptr' | 'other', name, size }
// const/volatile/restrict/type tags are transparent.
#pragma once

#include <bpf/btf.h>
#include <napi.h>

namespace thunderpac {

Napi::Value DescribeBtfType(Napi::Env env, const btf* types, uint32_t typeId);

}  // namespace thunderpac
