//! Messages to citizens: SMS over Amazon SNS, e-mail over Amazon SES (v2).

use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use aws_sdk_sns::types::MessageAttributeValue;

use crate::domain::{Email, Phone};
use crate::redact::Secret;
use crate::services::codes::{DeliveryError, Notifier};

pub struct AwsNotifier {
    sns: aws_sdk_sns::Client,
    ses: aws_sdk_sesv2::Client,
    email_sender: String,
    sms_sender_id: Option<String>,
}

impl AwsNotifier {
    pub fn new(
        sns: aws_sdk_sns::Client,
        ses: aws_sdk_sesv2::Client,
        email_sender: String,
        sms_sender_id: Option<String>,
    ) -> Self {
        Self {
            sns,
            ses,
            email_sender,
            sms_sender_id,
        }
    }
}

fn string_attribute(value: &str) -> Result<MessageAttributeValue, DeliveryError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| DeliveryError(format!("building SMS: {e}")))
}

fn utf8(text: &str) -> Result<Content, DeliveryError> {
    Content::builder()
        .data(text)
        .charset("UTF-8")
        .build()
        .map_err(|e| DeliveryError(format!("building e-mail: {e}")))
}

impl Notifier for AwsNotifier {
    async fn send_sms(&self, to: &Phone, text: &Secret<String>) -> Result<(), DeliveryError> {
        // Transactional SMS are routed for delivery, not cost, and bypass quiet hours.
        let mut publish = self
            .sns
            .publish()
            .phone_number(to.e164())
            .message(text.expose())
            .message_attributes("AWS.SNS.SMS.SMSType", string_attribute("Transactional")?);
        // Russian carriers drop SMS from unregistered senders; the ID is set per account.
        if let Some(sender_id) = &self.sms_sender_id {
            publish =
                publish.message_attributes("AWS.SNS.SMS.SenderID", string_attribute(sender_id)?);
        }
        publish.send().await.map_err(|e| {
            DeliveryError(format!(
                "SNS publish: {}",
                aws_sdk_sns::error::DisplayErrorContext(&e)
            ))
        })?;
        Ok(())
    }

    async fn send_email(
        &self,
        to: &Email,
        subject: &str,
        text: &Secret<String>,
    ) -> Result<(), DeliveryError> {
        let message = Message::builder()
            .subject(utf8(subject)?)
            .body(Body::builder().text(utf8(text.expose())?).build())
            .build();
        self.ses
            .send_email()
            .from_email_address(&self.email_sender)
            .destination(Destination::builder().to_addresses(to.as_str()).build())
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            .map_err(|e| {
                DeliveryError(format!(
                    "SES send: {}",
                    aws_sdk_sesv2::error::DisplayErrorContext(&e)
                ))
            })?;
        Ok(())
    }
}
