//! The libpam calls that pam-bindings does not wrap: environment, string items and syslog.
//! Everything unsafe in the module lives here.

use std::ffi::{CStr, CString};

use libc::{c_char, c_int, c_void};
use pam::module::PamHandle;

#[link(name = "pam")]
extern "C" {
    fn pam_getenv(pamh: *mut PamHandle, name: *const c_char) -> *const c_char;
    fn pam_putenv(pamh: *mut PamHandle, name_value: *const c_char) -> c_int;
    fn pam_get_item(pamh: *const PamHandle, item_type: c_int, item: *mut *const c_void) -> c_int;
    fn pam_syslog(pamh: *const PamHandle, priority: c_int, fmt: *const c_char, ...);
}

const PAM_SUCCESS: c_int = 0;
const PAM_SERVICE: c_int = 1;
const PAM_USER: c_int = 2;
const PAM_RHOST: c_int = 4;

/// A string item of the PAM handle.
#[derive(Clone, Copy, Debug)]
pub enum StringItem {
    Service,
    User,
    RemoteHost,
}

/// Reads a string item as raw bytes; `None` when unset or on error.
pub fn get_item(pamh: &PamHandle, item: StringItem) -> Option<Vec<u8>> {
    let item_type = match item {
        StringItem::Service => PAM_SERVICE,
        StringItem::User => PAM_USER,
        StringItem::RemoteHost => PAM_RHOST,
    };
    let mut ptr: *const c_void = std::ptr::null();
    // SAFETY: `pamh` is the live handle PAM passed to this module call; `ptr` is a valid out
    // pointer. For these item types libpam stores a NUL-terminated string or NULL.
    let rc = unsafe { pam_get_item(pamh, item_type, &mut ptr) };
    if rc != PAM_SUCCESS || ptr.is_null() {
        return None;
    }
    // SAFETY: non-null string item owned by the handle, valid until the item is changed; we
    // copy it out at once.
    Some(
        unsafe { CStr::from_ptr(ptr.cast::<c_char>()) }
            .to_bytes()
            .to_vec(),
    )
}

/// Reads a variable of the PAM environment as raw bytes.
pub fn getenv(pamh: &mut PamHandle, name: &CStr) -> Option<Vec<u8>> {
    // SAFETY: `pamh` is live, `name` is NUL-terminated; the result is NULL or a string owned by
    // the handle that we copy before making any other PAM call.
    let value = unsafe { pam_getenv(pamh, name.as_ptr()) };
    if value.is_null() {
        return None;
    }
    // SAFETY: non-null NUL-terminated string owned by the PAM environment (see above).
    Some(unsafe { CStr::from_ptr(value) }.to_bytes().to_vec())
}

/// Sets `NAME=value` in the PAM environment (libpam copies the string).
pub fn putenv(pamh: &mut PamHandle, name_value: &str) -> Result<(), c_int> {
    let text = CString::new(name_value).map_err(|_| 5 /* PAM_BUF_ERR */)?;
    // SAFETY: `pamh` is live and `text` is a NUL-terminated string; libpam duplicates it.
    let rc = unsafe { pam_putenv(pamh, text.as_ptr()) };
    if rc == PAM_SUCCESS {
        Ok(())
    } else {
        Err(rc)
    }
}

/// Syslog priority; libpam adds the authpriv facility and the `pam_sessrec(service:session)`
/// prefix, and logs under the application's own ident (it never calls openlog for us).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    Alert,
    Err,
    Warning,
    Notice,
    Info,
    Debug,
}

/// Logs one message through `pam_syslog`. NUL bytes are shown as `\0`.
pub fn syslog(pamh: &PamHandle, priority: Priority, message: &str) {
    let level = match priority {
        Priority::Alert => libc::LOG_ALERT,
        Priority::Err => libc::LOG_ERR,
        Priority::Warning => libc::LOG_WARNING,
        Priority::Notice => libc::LOG_NOTICE,
        Priority::Info => libc::LOG_INFO,
        Priority::Debug => libc::LOG_DEBUG,
    };
    let text = match CString::new(message) {
        Ok(text) => text,
        Err(_) => CString::new(message.replace('\0', "\\0")).unwrap_or_default(),
    };
    // SAFETY: constant "%s" format with one NUL-terminated string argument; `pamh` is live.
    unsafe {
        pam_syslog(
            pamh,
            libc::LOG_AUTHPRIV | level,
            c"%s".as_ptr(),
            text.as_ptr(),
        )
    };
}

/// Name of the module data holding the open session's state.
const STATE_KEY: &str = "pam_sessrec.session";

/// Keeps the open session's state with the PAM handle until close_session (libpam frees it
/// with pam_end through pam-bindings' cleanup, which only drops the box).
pub fn set_state(pamh: &mut PamHandle, state: crate::session::SessionState) -> Result<(), c_int> {
    pamh.set_data(STATE_KEY, Box::new(state))
        .map_err(|code| code as c_int)
}

/// The state stored by [`set_state`], if any.
pub fn get_state(pamh: &PamHandle) -> Option<crate::session::SessionState> {
    // SAFETY: only `set_state` stores data under STATE_KEY, always a Box<SessionState>, so the
    // pointer libpam returns has that type; we clone it out at once.
    unsafe { pamh.get_data::<crate::session::SessionState>(STATE_KEY) }
        .ok()
        .cloned()
}
