#include "btf_describe.h"

#include <string>

namespace thunderpac {
namespace {

constexpr int kMaxDepth = 32;  // BTF can be cyclic only through pointers, which we do not follow

Napi::Value Describe(Napi::Env env, const btf* types, uint32_t typeId, int depth) {
  Napi::Object out = Napi::Object::New(env);
  if (depth > kMaxDepth) {
    out.Set("kind", "other");
    out.Set("name", "");
    out.Set("size", 0);
    return out;
  }
  const btf_type* type = btf__type_by_id(types, typeId);
  if (type == nullptr || typeId == 0) {
    out.Set("kind", "other");
    out.Set("name", "void");
    out.Set("size", 0);
    return out;
  }
  const char* name = btf__name_by_offset(types, type->name_off);
  const long size = btf__resolve_size(types, typeId);
  out.Set("name", name == nullptr ? "" : name);
  out.Set("size", Napi::Number::New(env, size < 0 ? 0 : static_cast<double>(size)));
  switch (btf_kind(type)) {
    case BTF_KIND_INT: {
      const uint32_t encoding = btf_int_encoding(type);
      out.Set("kind", "int");
      out.Set("signed", Napi::Boolean::New(env, (encoding & BTF_INT_SIGNED) != 0));
      out.Set("bool", Napi::Boolean::New(env, (encoding & BTF_INT_BOOL) != 0));
      out.Set("bits", Napi::Number::New(env, btf_int_bits(type)));
      out.Set("bitOffset", Napi::Number::New(env, btf_int_offset(type)));
      return out;
    }
    case BTF_KIND_ENUM:
    case BTF_KIND_ENUM64:
      out.Set("kind", "enum");
      out.Set("signed", Napi::Boolean::New(env, btf_kflag(type)));
      return out;
    case BTF_KIND_STRUCT:
    case BTF_KIND_UNION: {
      out.Set("kind", btf_kind(type) == BTF_KIND_STRUCT ? "struct" : "union");
      Napi::Array members = Napi::Array::New(env);
      const btf_member* member = btf_members(type);
      for (uint16_t i = 0; i < btf_vlen(type); i++, member++) {
        Napi::Object entry = Napi::Object::New(env);
        const char* memberName = btf__name_by_offset(types, member->name_off);
        entry.Set("name", memberName == nullptr ? "" : memberName);
        entry.Set("bitOffset", Napi::Number::New(env, btf_member_bit_offset(type, i)));
        entry.Set("bitfieldSize", Napi::Number::New(env, btf_member_bitfield_size(type, i)));
        entry.Set("type", Describe(env, types, member->type, depth + 1));
        members.Set(i, entry);
      }
      out.Set("members", members);
      return out;
    }
    case BTF_KIND_ARRAY: {
      const struct btf_array* array = btf_array(type);
      out.Set("kind", "array");
      out.Set("count", Napi::Number::New(env, array->nelems));
      out.Set("element", Describe(env, types, array->type, depth + 1));
      return out;
    }
    case BTF_KIND_TYPEDEF:
      out.Set("kind", "typedef");
      out.Set("type", Describe(env, types, type->type, depth + 1));
      return out;
    case BTF_KIND_VOLATILE:
    case BTF_KIND_CONST:
    case BTF_KIND_RESTRICT:
    case BTF_KIND_TYPE_TAG:
      return Describe(env, types, type->type, depth + 1);
    case BTF_KIND_PTR:
      out.Set("kind", "ptr");
      out.Set("size", Napi::Number::New(env, sizeof(void*)));
      return out;
    default:
      out.Set("kind", "other");
      return out;
  }
}

}  // namespace

Napi::Value DescribeBtfType(Napi::Env env, const btf* types, uint32_t typeId) {
  return Describe(env, types, typeId, 0);
}

}  // namespace thunderpac
