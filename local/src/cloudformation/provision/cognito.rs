//! Cognito user pools, their app clients and groups
//! (docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-cognito-userpool.html,
//! .../aws-resource-cognito-userpoolclient.html, .../aws-resource-cognito-userpoolgroup.html),
//! created in the emulator with the properties its sign-up and tokens depend on; each app client
//! is registered with the gate with its pool's rules ([`crate::cognito::app_clients`]), which
//! moto stores but does not apply.

use aws_sdk_cognitoidentityprovider as idp;
use idp::types::{
    AttributeDataType, ExplicitAuthFlowsType, PasswordPolicyType, PreventUserExistenceErrorTypes,
    SchemaAttributeType, StringAttributeConstraintsType, UserPoolPolicyType,
};
use serde_json::Value;

use super::{ProvisionError, Stack, create_err, required_str, sdk_err};
use crate::cloudformation::template::{Physical, items, scalar_string};
use crate::cognito::app_clients::{AppClientRecord, PasswordPolicy};
use crate::emulator::REGION;

/// A list property's strings, converted to the SDK's enum `T`.
fn listed<T: for<'a> From<&'a str>>(value: &Value) -> Option<Vec<T>> {
    let names: Vec<T> = items(value)
        .iter()
        .filter_map(Value::as_str)
        .map(T::from)
        .collect();
    (!names.is_empty()).then_some(names)
}

fn flag(value: &Value) -> Option<bool> {
    scalar_string(value).map(|v| v == "true")
}

/// A `Schema` entry of the pool.
fn schema_attribute(attribute: &Value) -> SchemaAttributeType {
    let limits = &attribute["StringAttributeConstraints"];
    let constraints = StringAttributeConstraintsType::builder()
        .set_min_length(scalar_string(&limits["MinLength"]))
        .set_max_length(scalar_string(&limits["MaxLength"]))
        .build();
    SchemaAttributeType::builder()
        .set_name(scalar_string(&attribute["Name"]))
        .set_attribute_data_type(
            scalar_string(&attribute["AttributeDataType"])
                .map(|t| AttributeDataType::from(t.as_str())),
        )
        .set_mutable(flag(&attribute["Mutable"]))
        .set_required(flag(&attribute["Required"]))
        .string_attribute_constraints(constraints)
        .build()
}

impl Stack {
    pub(super) async fn create_user_pool(
        &self,
        id: &str,
        props: &Value,
    ) -> Result<Physical, ProvisionError> {
        let kind = "AWS::Cognito::UserPool";
        let name = self.name_or_generated(id, props, "UserPoolName", 128);
        let policy = PasswordPolicy::of(props);
        let password_policy = PasswordPolicyType::builder()
            .minimum_length(i32::try_from(policy.minimum_length).unwrap_or(i32::MAX))
            .require_lowercase(policy.require_lowercase)
            .require_uppercase(policy.require_uppercase)
            .require_numbers(policy.require_numbers)
            .require_symbols(policy.require_symbols)
            .build();
        let schema = items(&props["Schema"]).iter().map(schema_attribute);
        let out = idp::Client::new(&self.sdk)
            .create_user_pool()
            .pool_name(&name)
            .policies(
                UserPoolPolicyType::builder()
                    .password_policy(password_policy)
                    .build(),
            )
            .set_username_attributes(listed(&props["UsernameAttributes"]))
            .set_auto_verified_attributes(listed(&props["AutoVerifiedAttributes"]))
            .set_schema(Some(schema.collect()).filter(|s: &Vec<_>| !s.is_empty()))
            .send()
            .await
            .map_err(sdk_err(id, kind))?;
        let pool = out
            .user_pool
            .ok_or_else(|| create_err(id, kind, "no UserPool answered"))?;
        let (pool_id, arn) = pool
            .id
            .zip(pool.arn)
            .ok_or_else(|| create_err(id, kind, "CreateUserPool answered no Id or Arn"))?;
        let provider = format!("cognito-idp.{REGION}.amazonaws.com/{pool_id}");
        let url = format!("https://{provider}");
        let attributes = [
            ("Arn", arn.as_str()),
            ("UserPoolId", &pool_id),
            ("ProviderName", &provider),
            ("ProviderURL", &url),
        ];
        Ok(Physical::new(&pool_id, attributes))
    }

    /// An app client, registered with the gate with its pool's rules.
    pub(super) async fn create_user_pool_client(
        &self,
        id: &str,
        props: &Value,
    ) -> Result<Physical, ProvisionError> {
        let kind = "AWS::Cognito::UserPoolClient";
        let pool_id = required_str(id, kind, props, "/UserPoolId")?;
        let name = self.name_or_generated(id, props, "ClientName", 128);
        let prevent = scalar_string(&props["PreventUserExistenceErrors"])
            .map(|p| PreventUserExistenceErrorTypes::from(p.as_str()));
        let out = idp::Client::new(&self.sdk)
            .create_user_pool_client()
            .user_pool_id(pool_id)
            .client_name(&name)
            .generate_secret(flag(&props["GenerateSecret"]).unwrap_or(false))
            .set_explicit_auth_flows(listed::<ExplicitAuthFlowsType>(&props["ExplicitAuthFlows"]))
            .set_read_attributes(listed(&props["ReadAttributes"]))
            .set_write_attributes(listed(&props["WriteAttributes"]))
            .set_prevent_user_existence_errors(prevent)
            .send()
            .await
            .map_err(sdk_err(id, kind))?;
        let client_id = out
            .user_pool_client
            .and_then(|c| c.client_id)
            .ok_or_else(|| create_err(id, kind, "CreateUserPoolClient answered no ClientId"))?;
        let pool = self
            .id_with_attribute("UserPoolId", pool_id)
            .ok_or_else(|| {
                create_err(id, kind, format!("{pool_id} is no user pool of the stack"))
            })?;
        let template = self.template.clone();
        let pool_props = self
            .resolver
            .resolve(&template.resource(&pool)?.properties)?;
        let record = AppClientRecord::of(&client_id, pool_id, props, &pool_props);
        self.gate
            .register("cognito-app-clients", &record)
            .await
            .map_err(ProvisionError::Iam)?;
        Ok(Physical::new(
            &client_id,
            [("ClientId", client_id.as_str())],
        ))
    }

    pub(super) async fn create_user_pool_group(
        &self,
        id: &str,
        props: &Value,
    ) -> Result<Physical, ProvisionError> {
        let kind = "AWS::Cognito::UserPoolGroup";
        let pool_id = required_str(id, kind, props, "/UserPoolId")?;
        let name = self.name_or_generated(id, props, "GroupName", 128);
        idp::Client::new(&self.sdk)
            .create_group()
            .user_pool_id(pool_id)
            .group_name(&name)
            .set_description(scalar_string(&props["Description"]))
            .send()
            .await
            .map_err(sdk_err(id, kind))?;
        Ok(Physical::new(&name, []))
    }
}
