//! Bearer JWTs from an identity provider, as Trino's `JWT` authenticator takes them
//! (`http-server.authentication.jwt.*`): signed with a key from a PEM file or from a JWKS
//! URL (read again when a token names a key it has not seen, at most every 5 seconds), with
//! the required issuer and audience, the user read from the principal field (`sub` by
//! default) through the user-mapping pattern, and her groups from the groups field when
//! one is configured. Only asymmetric signatures are accepted (RSA, ECDSA, EdDSA): a public key
//! never verifies a token signed with itself as an HMAC secret.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

/// How often a JWKS URL may be read again for a key it did not have.
const JWKS_REFRESH: Duration = Duration::from_secs(5);

enum Keys {
    /// The public key of a PEM file.
    Pem(DecodingKey),
    /// The keys of a JWKS URL, and when they were read.
    Jwks {
        url: String,
        client: reqwest::Client,
        cached: Mutex<Option<(Instant, JwkSet)>>,
    },
}

/// Checks bearer JWTs and names their user.
pub struct JwtAuthenticator {
    keys: Keys,
    issuer: Option<String>,
    audience: Option<String>,
    principal_field: String,
    user_mapping: Option<regex::Regex>,
    groups_field: Option<String>,
}

/// Who a token names: the user and the groups its groups claim lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenUser {
    pub user: String,
    pub groups: Option<std::collections::BTreeSet<String>>,
}

impl std::fmt::Debug for JwtAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtAuthenticator")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

/// A PEM public key of any supported kind.
fn pem_key(pem: &[u8]) -> Result<DecodingKey, String> {
    DecodingKey::from_rsa_pem(pem)
        .or_else(|_| DecodingKey::from_ec_pem(pem))
        .or_else(|_| DecodingKey::from_ed_pem(pem))
        .map_err(|_| "not an RSA, EC or Ed25519 public key in PEM".to_string())
}

fn asymmetric(algorithm: Algorithm) -> bool {
    !matches!(
        algorithm,
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
    )
}

impl JwtAuthenticator {
    /// From the server's settings; `None` when no key is configured.
    pub fn from_config(server: &aichemy_config::ServerConfig) -> Result<Option<Self>, String> {
        let Some(source) = &server.jwt_key_file else {
            return Ok(None);
        };
        let keys = if source.starts_with("https://") || source.starts_with("http://") {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| format!("server.jwt_key_file: {e}"))?;
            Keys::Jwks {
                url: source.clone(),
                client,
                cached: Mutex::new(None),
            }
        } else {
            let pem =
                std::fs::read(source).map_err(|e| format!("server.jwt_key_file {source}: {e}"))?;
            Keys::Pem(pem_key(&pem).map_err(|e| format!("server.jwt_key_file {source}: {e}"))?)
        };
        let user_mapping = server
            .jwt_user_mapping_pattern
            .as_deref()
            .map(|pattern| {
                // The whole principal must match, as Java's `Matcher.matches` asks.
                regex::Regex::new(&format!("^(?:{pattern})$"))
                    .map_err(|e| format!("server.jwt_user_mapping_pattern: {e}"))
            })
            .transpose()?;
        Ok(Some(Self {
            keys,
            issuer: server.jwt_required_issuer.clone(),
            audience: server.jwt_required_audience.clone(),
            principal_field: server.jwt_principal_field.clone(),
            user_mapping,
            groups_field: server.jwt_groups_field.clone(),
        }))
    }

    /// The user a token names, or why it is refused.
    pub async fn user(&self, token: &str) -> Result<TokenUser, String> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| format!("{e}"))?;
        if !asymmetric(header.alg) {
            return Err(format!("the {:?} algorithm is not accepted", header.alg));
        }
        let key = self.key(header.kid.as_deref()).await?;
        let mut validation = Validation::new(header.alg);
        // A required issuer or audience is required to be there, not only to match.
        let mut required = vec!["exp"];
        required.extend(self.issuer.as_ref().map(|_| "iss"));
        required.extend(self.audience.as_ref().map(|_| "aud"));
        validation.set_required_spec_claims(&required);
        match &self.issuer {
            Some(issuer) => validation.set_issuer(&[issuer]),
            None => validation.iss = None,
        }
        match &self.audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        let claims = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
            .map_err(|e| format!("{e}"))?
            .claims;
        let principal = match claims.get(&self.principal_field) {
            Some(serde_json::Value::String(principal)) if !principal.is_empty() => principal,
            _ => {
                return Err(format!(
                    "the token has no principal field {}",
                    self.principal_field
                ))
            }
        };
        let user = match &self.user_mapping {
            None => principal.clone(),
            Some(pattern) => pattern
                .captures(principal)
                .map(|c| c.get(1).unwrap_or_else(|| c.get(0).expect("whole match")))
                .map(|m| m.as_str().to_string())
                .filter(|user| !user.is_empty())
                .ok_or("No user mapping patterns match the principal")?,
        };
        let groups = match &self.groups_field {
            None => None,
            Some(field) => Some(groups_claim(claims.get(field), field)?),
        };
        Ok(TokenUser { user, groups })
    }

    async fn key(&self, kid: Option<&str>) -> Result<DecodingKey, String> {
        let (url, client, cached) = match &self.keys {
            Keys::Pem(key) => return Ok(key.clone()),
            Keys::Jwks {
                url,
                client,
                cached,
            } => (url, client, cached),
        };
        let find = |set: &JwkSet| match kid {
            Some(kid) => set.find(kid).cloned(),
            None if set.keys.len() == 1 => set.keys.first().cloned(),
            None => None,
        };
        let stale = {
            let cached = cached.lock().unwrap_or_else(|e| e.into_inner());
            match &*cached {
                Some((_, set)) if find(set).is_some() => None,
                Some((read, _)) if read.elapsed() < JWKS_REFRESH => {
                    return Err("the token's key is not among the identity provider's".into())
                }
                _ => Some(()),
            }
        };
        if stale.is_some() {
            let set: JwkSet = client
                .get(url)
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .map_err(|e| {
                    format!(
                        "the identity provider's keys cannot be read: {}",
                        e.without_url()
                    )
                })?
                .json()
                .await
                .map_err(|e| format!("the identity provider's keys are not a JWKS: {e}"))?;
            *cached.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), set));
        }
        let cached = cached.lock().unwrap_or_else(|e| e.into_inner());
        let jwk = cached
            .as_ref()
            .and_then(|(_, set)| find(set))
            .ok_or("the token's key is not among the identity provider's")?;
        DecodingKey::from_jwk(&jwk).map_err(|e| format!("{e}"))
    }
}

impl TokenUser {
    /// Her user name, the groups the token lists recorded as hers (they decide what the
    /// access policy lets her do, beside those of the group file).
    pub fn signed_in(self, lakehouse: &aichemy_engine::Lakehouse) -> String {
        if let (Some(groups), Some(policy)) = (self.groups, lakehouse.policy()) {
            policy.claim_groups(&self.user, groups);
        }
        self.user
    }
}

/// The groups a groups claim lists: an array of names (a token without the claim names
/// none).
fn groups_claim(
    claim: Option<&serde_json::Value>,
    field: &str,
) -> Result<std::collections::BTreeSet<String>, String> {
    let invalid = || format!("the token's {field} claim is not an array of group names");
    match claim {
        None | Some(serde_json::Value::Null) => Ok(Default::default()),
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_string).ok_or_else(invalid))
            .collect(),
        Some(_) => Err(invalid()),
    }
}

/// The token of an `Authorization: Bearer …` header.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}
