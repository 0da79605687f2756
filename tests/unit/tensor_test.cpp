// HostTensor (construction, sharing, cloning, views, conversion) and the fp16 / bf16 helpers.
#include <gmock/gmock.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "ds2rt/error.h"
#include "ds2rt/tensor.h"
#include "test_util.h"

namespace ds2rt::test {
namespace {

using testing::HasSubstr;

uint32_t bitsOf(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

float floatOf(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

bool isHalfNaN(uint16_t h) { return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0; }

// Independent reference for the value of a finite half: sign * mantissa * 2^exponent, in double.
double halfReference(uint16_t h) {
  const int sign = (h & 0x8000u) ? -1 : 1;
  const int exponent = (h >> 10) & 0x1f;
  const int mantissa = h & 0x3ff;
  const double magnitude = exponent == 0 ? std::ldexp(mantissa, -24) : std::ldexp(1024 + mantissa, exponent - 25);
  return sign * magnitude;
}

// ---- HostTensor ----------------------------------------------------------------------------

TEST(HostTensor, FromFloatsKeepsShapeAndValues) {
  const HostTensor t = HostTensor::fromFloats({2, 3}, {1, 2, 3, 4, 5, 6});
  EXPECT_EQ(t.dtype(), DataType::kFloat32);
  EXPECT_EQ(t.shape(), (Shape{2, 3}));
  EXPECT_EQ(t.rank(), 2u);
  EXPECT_EQ(t.dim(1), 3);
  EXPECT_EQ(t.size(), 6);
  EXPECT_EQ(t.bytes(), 24u);
  EXPECT_FALSE(t.empty());
  EXPECT_EQ(toVector(t), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_ANY_THROW(t.dim(2));
}

TEST(HostTensor, FromFloatsRejectsWrongCount) {
  try {
    HostTensor::fromFloats({2, 3}, {1, 2, 3, 4, 5});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("[2, 3]"));
    EXPECT_THAT(e.what(), HasSubstr("5 values"));
  }
  EXPECT_THROW(HostTensor::fromFloats({2}, {1, 2, 3}), Error);
  EXPECT_THROW(HostTensor::fromFloats({-1, 2}, {1, 2}), Error);  // dynamic dimension
}

TEST(HostTensor, FromIntsKeepsShapeAndValues) {
  const HostTensor t = HostTensor::fromInts({3}, {7, -8, 2147483647});
  EXPECT_EQ(t.dtype(), DataType::kInt32);
  EXPECT_EQ(t.shape(), (Shape{3}));
  EXPECT_EQ(t.bytes(), 12u);
  EXPECT_EQ(t.data<int32_t>()[0], 7);
  EXPECT_EQ(t.data<int32_t>()[1], -8);
  EXPECT_EQ(t.data<int32_t>()[2], 2147483647);
  try {
    HostTensor::fromInts({2, 2}, {1, 2, 3});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("fromInts"));
    EXPECT_THAT(e.what(), HasSubstr("[2, 2]"));
  }
}

TEST(HostTensor, ConstructorZeroFills) {
  HostTensor t(DataType::kFloat64, {3, 5});
  EXPECT_EQ(t.bytes(), 15u * 8);
  for (int i = 0; i < 15; ++i) EXPECT_EQ(t.data<double>()[i], 0.0);
  HostTensor zero_sized(DataType::kFloat32, {0, 4});
  EXPECT_EQ(zero_sized.size(), 0);
  EXPECT_EQ(zero_sized.bytes(), 0u);
  EXPECT_EQ(zero_sized.clone().shape(), (Shape{0, 4}));
}

TEST(HostTensor, DefaultIsEmpty) {
  const HostTensor t;
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(t.data(), nullptr);
  // Cloning or converting an empty tensor gives an empty tensor, not a crash.
  EXPECT_TRUE(t.clone().empty());
  EXPECT_TRUE(t.toFloat32().empty());
}

TEST(HostTensor, CopiesShareStorage) {
  HostTensor a = HostTensor::fromFloats({2}, {1, 2});
  HostTensor b = a;
  EXPECT_EQ(a.data(), b.data());
  b.mutableData<float>()[0] = 42;
  EXPECT_EQ(a.data<float>()[0], 42);
}

TEST(HostTensor, CloneIsIndependent) {
  HostTensor a = HostTensor::fromFloats({2, 2}, {1, 2, 3, 4});
  HostTensor c = a.clone();
  EXPECT_NE(a.data(), c.data());
  EXPECT_EQ(c.shape(), a.shape());
  EXPECT_EQ(c.dtype(), a.dtype());
  EXPECT_EQ(toVector(c), toVector(a));
  c.mutableData<float>()[0] = -1;
  EXPECT_EQ(a.data<float>()[0], 1);
  a.mutableData<float>()[3] = 99;
  EXPECT_EQ(c.data<float>()[3], 4);
  // Other dtypes clone byte for byte.
  HostTensor i64(DataType::kInt64, {2});
  i64.mutableData<int64_t>()[0] = int64_t{1} << 40;
  i64.mutableData<int64_t>()[1] = -3;
  const HostTensor i64c = i64.clone();
  EXPECT_EQ(i64c.dtype(), DataType::kInt64);
  EXPECT_EQ(i64c.data<int64_t>()[0], int64_t{1} << 40);
  EXPECT_EQ(i64c.data<int64_t>()[1], -3);
}

TEST(HostTensor, ReshapedSharesStorage) {
  HostTensor a = HostTensor::fromFloats({2, 3}, {1, 2, 3, 4, 5, 6});
  HostTensor r = a.reshaped({3, 1, 2});
  EXPECT_EQ(r.shape(), (Shape{3, 1, 2}));
  EXPECT_EQ(a.shape(), (Shape{2, 3}));
  EXPECT_EQ(r.data(), a.data());
  r.mutableData<float>()[5] = 60;
  EXPECT_EQ(a.data<float>()[5], 60);
  try {
    a.reshaped({4, 2});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("cannot reshape [2, 3] to [4, 2]"));
  }
}

TEST(HostTensor, ToFloat32FromEveryType) {
  // float32: the same tensor, no copy.
  const HostTensor f32 = HostTensor::fromFloats({2}, {1.5f, -2.25f});
  EXPECT_EQ(f32.toFloat32().data(), f32.data());

  HostTensor f16(DataType::kFloat16, {4});
  const uint16_t halves[] = {0x3c00, 0xc100, 0x0001, 0x7bff};  // 1, -2.5, 2^-24, 65504
  std::memcpy(f16.mutableData(), halves, sizeof halves);
  EXPECT_EQ(toVector(f16), (std::vector<float>{1.0f, -2.5f, std::ldexp(1.0f, -24), 65504.0f}));

  HostTensor bf16(DataType::kBFloat16, {3});
  const uint16_t bfloats[] = {0x3f80, 0xc0a0, 0x4049};  // 1, -5, 3.140625
  std::memcpy(bf16.mutableData(), bfloats, sizeof bfloats);
  EXPECT_EQ(toVector(bf16), (std::vector<float>{1.0f, -5.0f, 3.140625f}));

  HostTensor f64(DataType::kFloat64, {2});
  f64.mutableData<double>()[0] = 0.1;
  f64.mutableData<double>()[1] = -1e300;
  const auto f64v = toVector(f64);
  EXPECT_EQ(f64v[0], 0.1f);
  EXPECT_EQ(f64v[1], -std::numeric_limits<float>::infinity());

  HostTensor i64(DataType::kInt64, {3});
  i64.mutableData<int64_t>()[0] = -7;
  i64.mutableData<int64_t>()[1] = int64_t{1} << 40;
  i64.mutableData<int64_t>()[2] = 0;
  EXPECT_EQ(toVector(i64), (std::vector<float>{-7.0f, 1099511627776.0f, 0.0f}));

  EXPECT_EQ(toVector(HostTensor::fromInts({3}, {-2147483647 - 1, 5, 16777216})),
            (std::vector<float>{-2147483648.0f, 5.0f, 16777216.0f}));

  HostTensor i8(DataType::kInt8, {3});
  const int8_t i8v[] = {-128, -1, 127};
  std::memcpy(i8.mutableData(), i8v, 3);
  EXPECT_EQ(toVector(i8), (std::vector<float>{-128, -1, 127}));

  HostTensor u8(DataType::kUInt8, {3});
  const uint8_t u8v[] = {0, 128, 255};
  std::memcpy(u8.mutableData(), u8v, 3);
  EXPECT_EQ(toVector(u8), (std::vector<float>{0, 128, 255}));

  HostTensor b(DataType::kBool, {2});
  b.mutableData<uint8_t>()[1] = 1;
  EXPECT_EQ(toVector(b), (std::vector<float>{0, 1}));

  // The result is a new float32 tensor of the same shape.
  const HostTensor converted = HostTensor(DataType::kInt32, {2, 3}).toFloat32();
  EXPECT_EQ(converted.dtype(), DataType::kFloat32);
  EXPECT_EQ(converted.shape(), (Shape{2, 3}));
}

TEST(HostTensor, FloatsRequiresFloat32) {
  EXPECT_EQ(HostTensor::fromFloats({3}, {1, 2, 3}).floats().size(), 3u);
  try {
    HostTensor(DataType::kFloat16, {2}).floats();
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("F16"));
  }
}

TEST(HostTensor, ReadOnlyViewRefusesMutableData) {
  auto owner = std::make_shared<std::vector<float>>(std::vector<float>{1, 2, 3, 4});
  HostTensor v = HostTensor::view(DataType::kFloat32, {2, 2}, owner->data(), owner);
  EXPECT_EQ(v.data(), owner->data());
  EXPECT_EQ(toVector(v), (std::vector<float>{1, 2, 3, 4}));
  try {
    v.mutableData();
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("read-only"));
  }
  EXPECT_THROW(v.reshaped({4}).mutableData<float>(), Error);  // still a view
  HostTensor c = v.clone();  // a clone owns its storage
  c.mutableData<float>()[0] = 10;
  EXPECT_EQ((*owner)[0], 1);
  // The view keeps its owner alive.
  std::weak_ptr<std::vector<float>> weak = owner;
  owner.reset();
  EXPECT_FALSE(weak.expired());
  EXPECT_EQ(v.data<float>()[3], 4);
  v = HostTensor();
  EXPECT_TRUE(weak.expired());
  // A view with a dynamic dimension is refused.
  const float x = 0;
  EXPECT_THROW(HostTensor::view(DataType::kFloat32, {-1}, &x, nullptr), Error);
}

TEST(DataTypes, NamesSizesAndParsing) {
  const std::pair<DataType, size_t> all[] = {{DataType::kFloat32, 4}, {DataType::kFloat16, 2}, {DataType::kBFloat16, 2},
                                             {DataType::kFloat64, 8}, {DataType::kInt64, 8},   {DataType::kInt32, 4},
                                             {DataType::kInt8, 1},    {DataType::kUInt8, 1},   {DataType::kBool, 1}};
  for (const auto& [type, size] : all) {
    EXPECT_EQ(sizeOf(type), size) << toString(type);
    EXPECT_EQ(dataTypeFromString(toString(type)), type);
  }
  EXPECT_STREQ(toString(DataType::kBFloat16), "BF16");
  EXPECT_STREQ(toString(DataType::kInt64), "I64");
  try {
    dataTypeFromString("F8_E4M3");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("F8_E4M3"));
  }
}

TEST(Shapes, ToStringAndElementCount) {
  EXPECT_EQ(toString(Shape{4, 1, 161, 50}), "[4, 1, 161, 50]");
  EXPECT_EQ(toString(Shape{int64_t{-1}, 3}), "[?, 3]");
  EXPECT_EQ(toString(Shape{}), "[]");
  EXPECT_EQ(numElements({}), 1);
  EXPECT_EQ(numElements({2, 0, 5}), 0);
  EXPECT_EQ(numElements({2, 3, 5}), 30);
  EXPECT_THROW(numElements({2, int64_t{-1}}), Error);
  // An element count that does not fit in 64 bits is an error, not a wrapped number.
  EXPECT_THROW(numElements({int64_t{1} << 32, int64_t{1} << 32}), Error);
}

// ---- fp16 ------------------------------------------------------------------------------------

TEST(Half, EveryBitPatternMatchesReferenceAndRoundTrips) {
  int nans = 0;
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    const auto bits = static_cast<uint16_t>(h);
    const float f = halfToFloat(bits);
    if (isHalfNaN(bits)) {
      ++nans;
      EXPECT_TRUE(std::isnan(f)) << std::hex << h;
      EXPECT_TRUE(isHalfNaN(floatToHalf(f))) << std::hex << h;  // NaN stays NaN (payload may change)
      EXPECT_EQ(floatToHalf(f) & 0x8000u, h & 0x8000u) << std::hex << h;
      continue;
    }
    if ((h & 0x7fffu) == 0x7c00u) {
      EXPECT_TRUE(std::isinf(f)) << std::hex << h;
    } else {
      EXPECT_EQ(static_cast<double>(f), halfReference(bits)) << std::hex << h;
    }
    EXPECT_EQ(std::signbit(f), (h & 0x8000u) != 0) << std::hex << h;
    ASSERT_EQ(floatToHalf(f), bits) << std::hex << h;
  }
  EXPECT_EQ(nans, 2 * 1023);
}

TEST(Half, RoundsToNearestEvenAtEveryMidpoint) {
  // Between each pair of adjacent finite halves (and between the largest finite and infinity).
  for (uint16_t h = 0; h <= 0x7bff; ++h) {
    const uint16_t next = static_cast<uint16_t>(h + 1);
    const float lo = halfToFloat(h);
    const float hi = next == 0x7c00 ? 65536.0f : halfToFloat(next);
    const float mid = (lo + hi) / 2;  // exact: 12 significant bits
    ASSERT_EQ(static_cast<double>(mid), (static_cast<double>(lo) + hi) / 2);
    const uint16_t even = (h & 1u) ? next : h;
    ASSERT_EQ(floatToHalf(mid), even) << std::hex << h;
    ASSERT_EQ(floatToHalf(-mid), even | 0x8000u) << std::hex << h;
    ASSERT_EQ(floatToHalf(std::nextafter(mid, 0.0f)), h) << std::hex << h;
    ASSERT_EQ(floatToHalf(std::nextafter(mid, 1e9f)), next) << std::hex << h;
  }
  // Spot checks with known constants.
  EXPECT_EQ(floatToHalf(1.0f + std::ldexp(1.0f, -11)), 0x3c00);      // tie -> even (down)
  EXPECT_EQ(floatToHalf(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);  // tie -> even (up)
  EXPECT_EQ(floatToHalf(0.1f), 0x2e66);
  EXPECT_EQ(floatToHalf(-2.5f), 0xc100);
  EXPECT_EQ(floatToHalf(65519.996f), 0x7bff);
  EXPECT_EQ(floatToHalf(65520.0f), 0x7c00);  // tie between 65504 and 65536 rounds to even = inf
}

TEST(Half, Subnormals) {
  const float smallest = std::ldexp(1.0f, -24);
  EXPECT_EQ(halfToFloat(0x0001), smallest);
  EXPECT_EQ(halfToFloat(0x8001), -smallest);
  EXPECT_EQ(halfToFloat(0x03ff), 1023 * smallest);
  EXPECT_EQ(halfToFloat(0x0400), std::ldexp(1.0f, -14));  // smallest normal
  EXPECT_EQ(floatToHalf(smallest), 0x0001);
  EXPECT_EQ(floatToHalf(smallest / 2), 0x0000);       // tie -> even (zero)
  EXPECT_EQ(floatToHalf(-smallest / 2), 0x8000);      // keeps the sign
  EXPECT_EQ(floatToHalf(smallest * 1.5f), 0x0002);    // tie -> even (two)
  EXPECT_EQ(floatToHalf(smallest * 0.51f), 0x0001);
  EXPECT_EQ(floatToHalf(1023.5f * smallest), 0x0400);  // rounds up into the normals
  EXPECT_EQ(floatToHalf(1e-10f), 0x0000);
  EXPECT_EQ(floatToHalf(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_EQ(floatToHalf(-0.0f), 0x8000);
  EXPECT_EQ(floatToHalf(0.0f), 0x0000);
}

TEST(Half, InfinityAndOverflow) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(halfToFloat(0x7c00), inf);
  EXPECT_EQ(halfToFloat(0xfc00), -inf);
  EXPECT_EQ(floatToHalf(inf), 0x7c00);
  EXPECT_EQ(floatToHalf(-inf), 0xfc00);
  EXPECT_EQ(floatToHalf(1e10f), 0x7c00);
  EXPECT_EQ(floatToHalf(-70000.0f), 0xfc00);
  EXPECT_EQ(floatToHalf(std::numeric_limits<float>::max()), 0x7c00);
  EXPECT_TRUE(isHalfNaN(floatToHalf(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(isHalfNaN(floatToHalf(floatOf(0x7f800001u))));  // signalling NaN with a low payload stays NaN
}

// ---- bfloat16 --------------------------------------------------------------------------------

TEST(BFloat16, EveryBitPatternIsTheUpperHalfOfAFloat) {
  for (uint32_t b = 0; b <= 0xffff; ++b) {
    const float f = bfloat16ToFloat(static_cast<uint16_t>(b));
    ASSERT_EQ(bitsOf(f), b << 16) << std::hex << b;
  }
  EXPECT_EQ(bfloat16ToFloat(0x3f80), 1.0f);
  EXPECT_EQ(bfloat16ToFloat(0xc000), -2.0f);
  EXPECT_EQ(bfloat16ToFloat(0x3e00), 0.125f);
  EXPECT_EQ(bfloat16ToFloat(0x0001), std::ldexp(1.0f, -133));  // subnormal
  EXPECT_EQ(bfloat16ToFloat(0x7f80), std::numeric_limits<float>::infinity());
  EXPECT_EQ(bfloat16ToFloat(0xff80), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(bfloat16ToFloat(0x7fc0)));
  EXPECT_TRUE(std::signbit(bfloat16ToFloat(0x8000)));
}

}  // namespace
}  // namespace ds2rt::test
