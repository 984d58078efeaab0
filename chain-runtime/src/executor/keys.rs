//! How keys reach step parameters ([`FromKey`]) and how outputs reach keys
//! ([`KeyType`]); both spelled as traits so a mismatch reads in the user's terms.

/// How a step parameter is taken from a key's value: by reference (`&T`), as a
/// borrowed view (`&str` from `String`, `&[T]` from `Vec<T>`), or as a clone (`T`).
#[diagnostic::on_unimplemented(
    message = "a step parameter of type `{Self}` cannot be fed from a key of type `{K}`",
    label = "this key holds `{K}`, but the step takes `{Self}` here",
    note = "a parameter takes a key by reference (`&{K}`), as a view (`&str` from `String`, `&[T]` from `Vec<T>`), or as a clone (`{K}`, which needs `{K}: Clone`)"
)]
pub trait FromKey<'a, K: ?Sized> {
    /// Takes the parameter from the key's value.
    fn from_key(value: &'a K) -> Self;
}

impl<'a, T: Clone> FromKey<'a, T> for T {
    fn from_key(value: &'a T) -> T {
        value.clone()
    }
}

impl<'a, T: ?Sized> FromKey<'a, T> for &'a T {
    fn from_key(value: &'a T) -> &'a T {
        value
    }
}

impl<'a> FromKey<'a, String> for &'a str {
    fn from_key(value: &'a String) -> &'a str {
        value
    }
}

impl<'a, T> FromKey<'a, Vec<T>> for &'a [T] {
    fn from_key(value: &'a Vec<T>) -> &'a [T] {
        value
    }
}

impl<'a, T> FromKey<'a, crate::Loop<T>> for &'a T {
    fn from_key(value: &'a crate::Loop<T>) -> &'a T {
        &value.value
    }
}

impl<'a> FromKey<'a, crate::Loop<String>> for &'a str {
    fn from_key(value: &'a crate::Loop<String>) -> &'a str {
        &value.value
    }
}

impl<'a, T: Clone> FromKey<'a, crate::Loop<T>> for T {
    fn from_key(value: &'a crate::Loop<T>) -> T {
        value.value.clone()
    }
}

impl<'a, T> FromKey<'a, Option<T>> for Option<&'a T> {
    fn from_key(value: &'a Option<T>) -> Option<&'a T> {
        value.as_ref()
    }
}

/// How a map step's parameter takes one element of its list (`f(each
/// list)`): by reference (`&T`), as a borrowed view, or as a clone. The same
/// forms as [`FromKey`], spelled apart so a mismatch speaks of elements.
#[diagnostic::on_unimplemented(
    message = "each element of this list is `{E}`, which a step parameter of type `{Self}` cannot take",
    label = "each element is `{E}`, but the step takes `{Self}` here",
    note = "a mapped parameter takes one element by reference (`&{E}`), as a view (`&str` from `String`, `&[T]` from `Vec<T>`), or as a clone (`{E}`, which needs `{E}: Clone`)"
)]
pub trait FromElement<'a, E: ?Sized> {
    /// Takes the parameter from one element.
    fn from_element(element: &'a E) -> Self;
}

impl<'a, T: Clone> FromElement<'a, T> for T {
    fn from_element(element: &'a T) -> T {
        element.clone()
    }
}

impl<'a, T: ?Sized> FromElement<'a, T> for &'a T {
    fn from_element(element: &'a T) -> &'a T {
        element
    }
}

impl<'a> FromElement<'a, String> for &'a str {
    fn from_element(element: &'a String) -> &'a str {
        element
    }
}

impl<'a, T> FromElement<'a, Vec<T>> for &'a [T] {
    fn from_element(element: &'a Vec<T>) -> &'a [T] {
        element
    }
}

impl<'a, T> FromElement<'a, Option<T>> for Option<&'a T> {
    fn from_element(element: &'a Option<T>) -> Option<&'a T> {
        element.as_ref()
    }
}

/// A key a map step runs over (`f(each key)`): a list, whose elements feed
/// the step one at a time.
#[diagnostic::on_unimplemented(
    message = "a map step runs once per element of a list, but this key holds `{Self}`",
    label = "`each` needs a list here, such as `Vec<T>`",
    note = "map over a key of type `Vec<T>`: the step then takes one element per run (`&T`, or `T` if it is `Clone`)"
)]
pub trait MapSource {
    /// The element type.
    type Item;
    /// The elements, in order.
    fn items(&self) -> &[Self::Item];
}

impl<T> MapSource for Vec<T> {
    type Item = T;
    fn items(&self) -> &[T] {
        self
    }
}

impl<T> MapSource for crate::Loop<Vec<T>> {
    type Item = T;
    fn items(&self) -> &[T] {
        &self.value
    }
}

/// A step's output stored under a key: the types must be equal. Spelled as a
/// trait so a mismatch (two route arms producing different types, a wrong
/// `key: Type` annotation) gets a message in the user's terms.
#[diagnostic::on_unimplemented(
    message = "this step produces `{Self}`, but its key holds `{T}`",
    label = "produces `{Self}`, expected `{T}`",
    note = "a key has one type: its `key: Type` annotation, or what its first producer returns; every route arm writing the key must produce that type"
)]
pub trait KeyType<T> {
    /// The value, as the key's type.
    fn into_key(self) -> T;
}

impl<T> KeyType<T> for T {
    fn into_key(self) -> T {
        self
    }
}
