// std::visit with one lambda per alternative: std::visit(Overloaded{[](const A&) {...}, ...}, v).
#pragma once

namespace ds2rt::detail {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
// Clang before 17 deduces no template arguments for aggregates without this guide.
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

}  // namespace ds2rt::detail
