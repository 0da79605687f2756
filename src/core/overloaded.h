// std::visit with one lambda per alternative: std::visit(Overloaded{[](const A&) {...}, ...}, v).
#pragma once

namespace ds2rt::detail {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};

}  // namespace ds2rt::detail
