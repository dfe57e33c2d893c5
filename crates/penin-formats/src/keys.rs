//! [`Keys`]: the identities a load decrypts with and the recipients a save encrypts to.
//!
//! An identity file is age's own (as `age-keygen` writes it): `#` comments, blank lines and
//! one `AGE-SECRET-KEY-1…` line per X25519 identity. Every identity's public key (its
//! `age1…` recipient) is a recipient too, so that what penin writes with an identity it can
//! read again; [`Keys::with_recipient`] adds others.

use std::fmt;
use std::io::{self, Write};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use age::secrecy::{ExposeSecret, SecretString};
use age::x25519;
use age_core::format::{FileKey, Stanza};

use crate::error::{Error, Result};

/// The tag of the key-less stanza penin adds to an age header for each recipient, naming it
/// (`-> penin-recipient age1…`): an age header does not otherwise say whom an X25519 file
/// is for. age implementations skip stanzas of a type they do not know.
pub const RECIPIENT_STANZA: &str = "penin-recipient";

/// The identities a load decrypts with, and the recipients a save encrypts to (none: the
/// save is plaintext). Cheap to clone.
#[derive(Clone, Default)]
pub struct Keys {
    identities: Arc<Vec<x25519::Identity>>,
    recipients: Vec<x25519::Recipient>,
}

impl Keys {
    /// No identity and no recipient: saves are plaintext, and an encrypted file cannot be
    /// loaded.
    #[must_use]
    pub fn new() -> Self {
        Keys::default()
    }

    /// The identities of the identity file at `path`, and their recipients.
    pub fn from_identity_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::IdentityFile {
            action: "read",
            path: path.to_owned(),
            source,
        })?;
        Keys::from_identities(&text, path)
    }

    /// The identities of `text`, an identity file's content (`path` names it in errors).
    pub fn from_identities(text: &str, path: &Path) -> Result<Self> {
        let mut identities = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |what: &str| Error::BadIdentity {
                path: path.to_owned(),
                line: index + 1,
                what: what.to_owned(),
            };
            if !line.starts_with("AGE-SECRET-KEY-1") {
                // Never the line itself: it may be a secret of another kind.
                return Err(bad(
                    "not an X25519 identity (AGE-SECRET-KEY-1...): penin reads no other kind",
                ));
            }
            identities.push(
                x25519::Identity::from_str(line)
                    .map_err(|e| bad(&format!("not an X25519 identity: {e}")))?,
            );
        }
        if identities.is_empty() {
            return Err(Error::BadIdentity {
                path: path.to_owned(),
                line: 0,
                what: "it holds no identity".to_owned(),
            });
        }
        let recipients = identities.iter().map(x25519::Identity::to_public).collect();
        Ok(Keys {
            identities: Arc::new(identities),
            recipients,
        })
    }

    /// These keys, also encrypting to `recipient` (an `age1…` X25519 recipient).
    pub fn with_recipient(mut self, recipient: &str) -> Result<Self> {
        let parsed = parse_recipient(recipient)?;
        if !self.recipients.contains(&parsed) {
            self.recipients.push(parsed);
        }
        Ok(self)
    }

    /// These keys without recipients: saves are plaintext; loads still decrypt.
    #[must_use]
    pub fn plaintext(mut self) -> Self {
        self.recipients.clear();
        self
    }

    /// Whether saves are encrypted: there is at least one recipient.
    pub fn encrypts(&self) -> bool {
        !self.recipients.is_empty()
    }

    /// Whether there is an identity to decrypt with.
    pub fn decrypts(&self) -> bool {
        !self.identities.is_empty()
    }

    /// The recipients saves are encrypted to, as `age1…` strings.
    pub fn recipients(&self) -> Vec<String> {
        self.recipients.iter().map(ToString::to_string).collect()
    }

    /// The recipients of the identities (their public keys), as `age1…` strings.
    pub fn identity_recipients(&self) -> Vec<String> {
        self.identities
            .iter()
            .map(|identity| identity.to_public().to_string())
            .collect()
    }

    /// The X25519 identities loads decrypt with: what a sealed journal's key is unwrapped
    /// with (`penin_history::journal::Seal::read`).
    pub fn x25519_identities(&self) -> &[x25519::Identity] {
        &self.identities
    }

    /// The X25519 recipients saves are encrypted to: what a new sealed journal's key is
    /// wrapped for (`penin_history::journal::Seal::generate`). Empty: saves are plaintext.
    pub fn x25519_recipients(&self) -> &[x25519::Recipient] {
        &self.recipients
    }

    /// The identities, for age's decryptor.
    pub(crate) fn identities(&self) -> impl Iterator<Item = &dyn age::Identity> {
        self.identities.iter().map(|i| i as &dyn age::Identity)
    }

    /// The header stanzas that wrap `file_key` to every recipient (X25519), then one
    /// [`RECIPIENT_STANZA`] naming each; none without recipients.
    pub(crate) fn stanzas(&self, file_key: &FileKey) -> io::Result<Vec<Stanza>> {
        let mut stanzas = Vec::with_capacity(2 * self.recipients.len());
        for recipient in &self.recipients {
            let (wrapped, _labels) =
                age::Recipient::wrap_file_key(recipient, file_key).map_err(io::Error::other)?;
            stanzas.extend(wrapped);
        }
        stanzas.extend(self.recipients.iter().map(|recipient| Stanza {
            tag: RECIPIENT_STANZA.to_owned(),
            args: vec![recipient.to_string()],
            body: Vec::new(),
        }));
        Ok(stanzas)
    }
}

impl fmt::Debug for Keys {
    /// The recipients, never the identities' secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys")
            .field("identities", &self.identity_recipients())
            .field("recipients", &self.recipients())
            .finish()
    }
}

impl PartialEq for Keys {
    /// The same identities (by their public keys) and the same recipients.
    fn eq(&self, other: &Self) -> bool {
        self.identity_recipients() == other.identity_recipients()
            && self.recipients == other.recipients
    }
}

/// An `age1…` X25519 recipient, checked.
pub fn parse_recipient(text: &str) -> Result<x25519::Recipient> {
    x25519::Recipient::from_str(text.trim()).map_err(|what| Error::BadRecipient {
        recipient: text.to_owned(),
        what,
    })
}

/// A new X25519 identity: the identity file's text (as `age-keygen` writes it, `created` in
/// its first comment) and its recipient.
pub fn new_identity(created: &str) -> (SecretString, String) {
    let identity = x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let text = format!(
        "# created: {created}\n# public key: {recipient}\n{}\n",
        identity.to_string().expose_secret()
    );
    (SecretString::from(text), recipient)
}

/// Writes a new identity to `path`, which must not exist: created with mode 0600 (on Unix),
/// so the secret is never readable by others, not even for a moment; synced. Returns the
/// recipient.
pub fn write_new_identity(path: impl AsRef<Path>, created: &str) -> Result<String> {
    let path = path.as_ref();
    let io_error = |source| Error::IdentityFile {
        action: "create",
        path: path.to_owned(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io_error)?;
    let (text, recipient) = new_identity(created);
    let written = file
        .write_all(text.expose_secret().as_bytes())
        .and_then(|()| file.sync_all());
    if let Err(source) = written {
        drop(file);
        // A file of ours, half written: no use to anyone.
        let _ = std::fs::remove_file(path);
        return Err(io_error(source));
    }
    Ok(recipient)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_file_reads_back_with_its_recipient() {
        let (text, recipient) = new_identity("2026-11-29T10:00:00Z");
        let keys = Keys::from_identities(text.expose_secret(), Path::new("k")).unwrap();
        assert_eq!(keys.recipients(), std::slice::from_ref(&recipient));
        assert_eq!(keys.identity_recipients(), [recipient]);
        assert!(keys.encrypts() && keys.decrypts());
        let plain = keys.plaintext();
        assert!(!plain.encrypts() && plain.decrypts());
    }

    #[test]
    fn bad_identity_files_name_the_line_not_the_secret() {
        let rows: &[(&str, &str)] = &[
            ("", "k: it holds no identity"),
            ("# only a comment\n\n", "k: it holds no identity"),
            (
                "# c\nAGE-PLUGIN-YUBIKEY-1SECRET\n",
                "k, line 2: not an X25519 identity (AGE-SECRET-KEY-1...): penin reads no other kind",
            ),
            (
                "AGE-SECRET-KEY-1QQQQ\n",
                "k, line 1: not an X25519 identity: invalid Bech32 encoding",
            ),
        ];
        for (text, message) in rows {
            let error = Keys::from_identities(text, Path::new("k")).unwrap_err();
            assert_eq!(error.to_string(), *message, "{text:?}");
            for secret in ["YUBIKEY-1SECRET", "QQQQ"] {
                assert!(!error.to_string().contains(secret), "{error}");
            }
        }
    }

    #[test]
    fn recipients_are_checked_and_not_repeated() {
        let (_, recipient) = new_identity("now");
        let keys = Keys::new()
            .with_recipient(&recipient)
            .unwrap()
            .with_recipient(&recipient)
            .unwrap();
        assert_eq!(keys.recipients(), [recipient]);
        assert!(keys.encrypts() && !keys.decrypts());
        let error = Keys::new().with_recipient("age1nope").unwrap_err();
        assert_eq!(
            error.to_string(),
            "\"age1nope\" is not an age X25519 recipient (age1...): invalid Bech32 encoding"
        );
    }

    #[test]
    fn debug_never_shows_a_secret() {
        let (text, _) = new_identity("now");
        let keys = Keys::from_identities(text.expose_secret(), Path::new("k")).unwrap();
        let shown = format!("{keys:?}");
        assert!(!shown.contains("AGE-SECRET-KEY"), "{shown}");
        assert!(shown.contains("age1"), "{shown}");
    }

    #[cfg(unix)]
    #[test]
    fn a_new_identity_file_is_0600_and_never_overwritten() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.txt");
        let recipient = write_new_identity(&path, "now").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let before = std::fs::read(&path).unwrap();
        let error = write_new_identity(&path, "now").unwrap_err();
        assert!(
            matches!(&error, Error::IdentityFile { source, .. } if source.kind() == io::ErrorKind::AlreadyExists),
            "{error:?}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), before);
        assert_eq!(
            Keys::from_identity_file(&path).unwrap().recipients(),
            [recipient]
        );
    }
}
