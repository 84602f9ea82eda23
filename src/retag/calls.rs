//! The tag-add call of each service, for [`super::run`]: one arm per tagging API, each
//! with its SDK's own tag type, in the record's region.

use super::*;

/// The tag calls of one run: the connections and the account, which the ARNs some records
/// lack are built from.
pub(super) struct Tagger<'a> {
    pub(super) ctx: &'a StepCtx,
    pub(super) base: Vec<(String, String)>,
}

impl Tagger<'_> {
    fn aws(&self, region: &str) -> Arc<Aws> {
        self.ctx.sh.aws_in(region)
    }

    /// The record's ARN, from the record or built (looking the account up once per run).
    async fn arn(&self, rec: &ResourceRecord) -> Result<String> {
        if recorded_arn(rec).is_some() {
            return Ok(arn_of(rec, ""));
        }
        let account = self.ctx.account_id().await?;
        Ok(arn_of(rec, &account))
    }

    fn map(&self) -> HashMap<String, String> {
        self.base.iter().cloned().collect()
    }

    /// EC2 CreateTags on up to [`EC2_BATCH`] IDs of one region at once. A batch fails as a
    /// whole when one of its IDs is gone (`Invalid<Type>ID.NotFound`) or refused (e.g.
    /// `TagLimitExceeded`), so it is then tagged ID by ID: everything else gets its tags, the
    /// gone are skipped and each refusal names its resource.
    pub(super) async fn ec2(&self, region: &str, ids: &[String]) -> (Tally, Vec<anyhow::Error>) {
        let aws = self.aws(region);
        let tags: Vec<aws_sdk_ec2::types::Tag> = self
            .base
            .iter()
            .map(|(k, v)| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build())
            .collect();
        let call = |ids: Vec<String>, what: String| {
            let (ec2, tags) = (aws.ec2().clone(), tags.clone());
            async move {
                ec2.create_tags()
                    .set_resources(Some(ids))
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .map(|_| ())
                    .aws("ec2:CreateTags", what)
            }
        };
        let mut total = Tally::default();
        let mut errors = Vec::new();
        for chunk in ids.chunks(EC2_BATCH) {
            let what = match chunk {
                [one] => one.clone(),
                many => format!("{} EC2 resources in {region}", many.len()),
            };
            if call(chunk.to_vec(), what).await.is_ok() {
                total.tagged += chunk.len();
                continue;
            }
            for id in chunk {
                match tally(call(vec![id.clone()], id.clone()).await, 1) {
                    Ok(t) => {
                        total.tagged += t.tagged;
                        total.gone += t.gone;
                    }
                    Err(e) => errors.push(e),
                }
            }
        }
        (total, errors)
    }

    /// Tags one resource (anything but EC2, which goes in batches).
    pub(super) async fn one(&self, t: &Target) -> Result<Tally> {
        let rec = &t.rec;
        let aws = self.aws(&rec.region);
        let base = &self.base;
        let r: Result<(), AwsError> = match t.api {
            Api::Ec2 => {
                let (t, mut errors) = self.ec2(&rec.region, std::slice::from_ref(&rec.id)).await;
                return match errors.pop() {
                    Some(e) => Err(e),
                    None => Ok(t),
                };
            }
            Api::Rds => {
                let arn = self.arn(rec).await?;
                let tags = base
                    .iter()
                    .map(|(k, v)| aws_sdk_rds::types::Tag::builder().key(k).value(v).build())
                    .collect();
                aws.rds()
                    .add_tags_to_resource()
                    .resource_name(&arn)
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .map(|_| ())
                    .aws("rds:AddTagsToResource", &arn)
            }
            Api::Ecs => {
                let arn = self.arn(rec).await?;
                let tags = base
                    .iter()
                    .map(|(k, v)| aws_sdk_ecs::types::Tag::builder().key(k).value(v).build())
                    .collect();
                aws.ecs()
                    .tag_resource()
                    .resource_arn(&arn)
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .map(|_| ())
                    .aws("ecs:TagResource", &arn)
            }
            Api::Elbv2 => {
                let arn = self.arn(rec).await?;
                let tags = base
                    .iter()
                    .map(|(k, v)| {
                        aws_sdk_elasticloadbalancingv2::types::Tag::builder()
                            .key(k)
                            .value(v)
                            .build()
                    })
                    .collect();
                aws.elb()
                    .add_tags()
                    .resource_arns(&arn)
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .map(|_| ())
                    .aws("elasticloadbalancing:AddTags", &arn)
            }
            Api::Lambda => {
                let arn = self.arn(rec).await?;
                aws.lambda()
                    .tag_resource()
                    .resource(&arn)
                    .set_tags(Some(self.map()))
                    .send()
                    .await
                    .map(|_| ())
                    .aws("lambda:TagResource", &arn)
            }
            Api::Sqs => aws
                .sqs()
                .tag_queue()
                .queue_url(&rec.id)
                .set_tags(Some(self.map()))
                .send()
                .await
                .map(|_| ())
                .aws("sqs:TagQueue", &rec.id),
            Api::Sns => {
                let arn = self.arn(rec).await?;
                let tags = base
                    .iter()
                    .map(|(k, v)| aws_sdk_sns::types::Tag::builder().key(k).value(v).build())
                    .collect::<Result<Vec<_>, _>>()
                    .context("building SNS tags")?;
                aws.sns()
                    .tag_resource()
                    .resource_arn(&arn)
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .map(|_| ())
                    .aws("sns:TagResource", &arn)
            }
            Api::Kms => {
                let tags = base
                    .iter()
                    .map(|(k, v)| {
                        aws_sdk_kms::types::Tag::builder()
                            .tag_key(k)
                            .tag_value(v)
                            .build()
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .context("building KMS tags")?;
                aws.kms()
                    .tag_resource()
                    .key_id(&rec.id)
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .map(|_| ())
                    .aws("kms:TagResource", &rec.id)
            }
            Api::Logs => {
                let arn = self.arn(rec).await?;
                aws.logs()
                    .tag_resource()
                    .resource_arn(&arn)
                    .set_tags(Some(self.map()))
                    .send()
                    .await
                    .map(|_| ())
                    .aws("logs:TagResource", &arn)
            }
            Api::DynamoDb => {
                let arn = self.arn(rec).await?;
                let tags = base
                    .iter()
                    .map(|(k, v)| {
                        aws_sdk_dynamodb::types::Tag::builder()
                            .key(k)
                            .value(v)
                            .build()
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .context("building DynamoDB tags")?;
                aws.dynamodb()
                    .tag_resource()
                    .resource_arn(&arn)
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .map(|_| ())
                    .aws("dynamodb:TagResource", &arn)
            }
            Api::SecretsManager => {
                let id = recorded_arn(rec).unwrap_or(&rec.id);
                let tags = base
                    .iter()
                    .map(|(k, v)| {
                        aws_sdk_secretsmanager::types::Tag::builder()
                            .key(k)
                            .value(v)
                            .build()
                    })
                    .collect();
                aws.secrets()
                    .tag_resource()
                    .secret_id(id)
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .map(|_| ())
                    .aws("secretsmanager:TagResource", id)
            }
            Api::S3 => return self.bucket(&aws, &rec.id).await,
            Api::CloudFront => {
                let arn = self.arn(rec).await?;
                let items = base
                    .iter()
                    .map(|(k, v)| {
                        aws_sdk_cloudfront::types::Tag::builder()
                            .key(k)
                            .value(v)
                            .build()
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .context("building CloudFront tags")?;
                aws.cloudfront()
                    .tag_resource()
                    .resource(&arn)
                    .tags(
                        aws_sdk_cloudfront::types::Tags::builder()
                            .set_items(Some(items))
                            .build(),
                    )
                    .send()
                    .await
                    .map(|_| ())
                    .aws("cloudfront:TagResource", &arn)
            }
            Api::Ecr => {
                let arn = self.arn(rec).await?;
                let tags = base
                    .iter()
                    .map(|(k, v)| aws_sdk_ecr::types::Tag::builder().key(k).value(v).build())
                    .collect::<Result<Vec<_>, _>>()
                    .context("building ECR tags")?;
                aws.ecr()
                    .tag_resource()
                    .resource_arn(&arn)
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .map(|_| ())
                    .aws("ecr:TagResource", &arn)
            }
            Api::IamRole | Api::IamPolicy => {
                let tags = base
                    .iter()
                    .map(|(k, v)| aws_sdk_iam::types::Tag::builder().key(k).value(v).build())
                    .collect::<Result<Vec<_>, _>>()
                    .context("building IAM tags")?;
                if t.api == Api::IamRole {
                    aws.iam()
                        .tag_role()
                        .role_name(&rec.id)
                        .set_tags(Some(tags))
                        .send()
                        .await
                        .map(|_| ())
                        .aws("iam:TagRole", &rec.id)
                } else {
                    // The policy's record ID is its ARN.
                    let arn = recorded_arn(rec).unwrap_or(&rec.id);
                    aws.iam()
                        .tag_policy()
                        .policy_arn(arn)
                        .set_tags(Some(tags))
                        .send()
                        .await
                        .map(|_| ())
                        .aws("iam:TagPolicy", arn)
                }
            }
            Api::Wafv2 => {
                let arn = self.arn(rec).await?;
                let tags = base
                    .iter()
                    .map(|(k, v)| aws_sdk_wafv2::types::Tag::builder().key(k).value(v).build())
                    .collect::<Result<Vec<_>, _>>()
                    .context("building WAF tags")?;
                aws.waf()
                    .tag_resource()
                    .resource_arn(&arn)
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .map(|_| ())
                    .aws("wafv2:TagResource", &arn)
            }
            Api::CloudMap => {
                let arn = self.arn(rec).await?;
                let tags = base
                    .iter()
                    .map(|(k, v)| {
                        aws_sdk_servicediscovery::types::Tag::builder()
                            .key(k)
                            .value(v)
                            .build()
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .context("building Cloud Map tags")?;
                aws.cloudmap()
                    .tag_resource()
                    .resource_arn(&arn)
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .map(|_| ())
                    .aws("servicediscovery:TagResource", &arn)
            }
            Api::Backup => {
                let arn = self.arn(rec).await?;
                aws.backup()
                    .tag_resource()
                    .resource_arn(&arn)
                    .set_tags(Some(self.map()))
                    .send()
                    .await
                    .map(|_| ())
                    .aws("backup:TagResource", &arn)
            }
            Api::CodeDeploy => {
                let arn = self.arn(rec).await?;
                let tags = base
                    .iter()
                    .map(|(k, v)| {
                        aws_sdk_codedeploy::types::Tag::builder()
                            .key(k)
                            .value(v)
                            .build()
                    })
                    .collect();
                aws.codedeploy()
                    .tag_resource()
                    .resource_arn(&arn)
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .map(|_| ())
                    .aws("codedeploy:TagResource", &arn)
            }
            Api::Events => {
                let arn = self.arn(rec).await?;
                let tags = base
                    .iter()
                    .map(|(k, v)| {
                        aws_sdk_eventbridge::types::Tag::builder()
                            .key(k)
                            .value(v)
                            .build()
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .context("building EventBridge tags")?;
                aws.events()
                    .tag_resource()
                    .resource_arn(&arn)
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .map(|_| ())
                    .aws("events:TagResource", &arn)
            }
            Api::CloudWatch => {
                let arn = self.arn(rec).await?;
                let tags = base
                    .iter()
                    .map(|(k, v)| {
                        aws_sdk_cloudwatch::types::Tag::builder()
                            .key(k)
                            .value(v)
                            .build()
                    })
                    .collect();
                aws.cloudwatch()
                    .tag_resource()
                    .resource_arn(&arn)
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .map(|_| ())
                    .aws("cloudwatch:TagResource", &arn)
            }
            Api::Acm => {
                let arn = recorded_arn(rec).unwrap_or(&rec.id);
                let tags = base
                    .iter()
                    .map(|(k, v)| aws_sdk_acm::types::Tag::builder().key(k).value(v).build())
                    .collect::<Result<Vec<_>, _>>()
                    .context("building ACM tags")?;
                aws.acm()
                    .add_tags_to_certificate()
                    .certificate_arn(arn)
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .map(|_| ())
                    .aws("acm:AddTagsToCertificate", arn)
            }
            Api::AppAutoScaling => {
                let Some(arn) = self.scalable_target_arn(&aws, rec).await? else {
                    return Ok(Tally { tagged: 0, gone: 1 });
                };
                aws.autoscaling()
                    .tag_resource()
                    .resource_arn(&arn)
                    .set_tags(Some(self.map()))
                    .send()
                    .await
                    .map(|_| ())
                    .aws("application-autoscaling:TagResource", &arn)
            }
            Api::HostedZone => {
                let zone = rec
                    .attrs
                    .get(cluster::ATTR_HOSTED_ZONE)
                    .map(|z| bare_zone_id(z))
                    .unwrap_or_default();
                let tags = base
                    .iter()
                    .map(|(k, v)| {
                        aws_sdk_route53::types::Tag::builder()
                            .key(k)
                            .value(v)
                            .build()
                    })
                    .collect();
                aws.route53()
                    .change_tags_for_resource()
                    .resource_type(aws_sdk_route53::types::TagResourceType::Hostedzone)
                    .resource_id(zone)
                    .set_add_tags(Some(tags))
                    .send()
                    .await
                    .map(|_| ())
                    .aws("route53:ChangeTagsForResource", zone)
            }
        };
        tally(r, 1)
    }

    /// GetBucketTagging, then PutBucketTagging with the merged set (only if it differs).
    async fn bucket(&self, aws: &Aws, bucket: &str) -> Result<Tally> {
        let s3 = aws.s3();
        let got = storage::no_config(
            s3.get_bucket_tagging()
                .bucket(bucket)
                .send()
                .await
                .aws("s3:GetBucketTagging", bucket),
        );
        let current: Vec<(String, String)> = match got {
            Ok(out) => out
                .map(|o| {
                    o.tag_set()
                        .iter()
                        .map(|t| (t.key().to_string(), t.value().to_string()))
                        .collect()
                })
                .unwrap_or_default(),
            Err(e) => return tally(Err(e), 1),
        };
        let Some(all) = merged_bucket_tags(&current, &self.base) else {
            return Ok(Tally { tagged: 1, gone: 0 });
        };
        let r = s3
            .put_bucket_tagging()
            .bucket(bucket)
            .tagging(storage::s3_tags(&all)?)
            .send()
            .await
            .map(|_| ())
            .aws("s3:PutBucketTagging", bucket);
        tally(r, 1)
    }

    /// A scalable target's ARN: recorded, else looked up by its resource ID (records made
    /// before RegisterScalableTarget returned ARNs have none); `None` if it is gone.
    async fn scalable_target_arn(&self, aws: &Aws, rec: &ResourceRecord) -> Result<Option<String>> {
        if let Some(arn) = recorded_arn(rec) {
            return Ok(Some(arn.to_string()));
        }
        use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};
        let out = aws
            .autoscaling()
            .describe_scalable_targets()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_ids(&rec.id)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .send()
            .await
            .aws("application-autoscaling:DescribeScalableTargets", &rec.id)?;
        Ok(out
            .scalable_targets()
            .iter()
            .find(|t| t.resource_id() == rec.id)
            .and_then(|t| t.scalable_target_arn())
            .map(str::to_string))
    }
}
