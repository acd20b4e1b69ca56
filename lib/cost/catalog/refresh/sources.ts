/**
 * Where `ferry prices refresh` takes its inputs from, for its help: the command reads files only, so the
 * user downloads them (the public addresses below; the AWS and GCP ones are the providers' own APIs).
 */
export const REFRESH_SOURCES = `
Ferry does not download these (it reads files only); fetch them first, e.g.:
  --aws-offer     curl -o ec2-us-east-1.json https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonEC2/current/us-east-1/index.json
                  (the AWS Price List offer file for EC2, one per region; several hundred MB each)
  --aws-spot      aws ec2 describe-spot-price-history --region us-east-1 --product-descriptions Linux/UNIX \\
                    --start-time $(date -u +%Y-%m-%dT%H:%M:%SZ) --output json > spot-us-east-1.json
  --aws-advisor   curl -o spot-advisor.json https://spot-bid-advisor.s3.amazonaws.com/spot-advisor-data.json
                  (the Spot Instance Advisor's data: interruption bands)
  --gcp-skus      curl -o gcp-skus.json "https://cloudbilling.googleapis.com/v1/services/6F81-5844-456A/skus?key=API_KEY&pageSize=5000"
                  (Compute Engine's Cloud Billing Catalog SKUs; pass every page, following nextPageToken)
  --azure-retail  curl -o azure-eastus.json "https://prices.azure.com/api/retail/prices?\\$filter=serviceName%20eq%20'Virtual%20Machines'%20and%20armRegionName%20eq%20'eastus'"
                  (the Azure Retail Prices API; pass every page, following NextPageLink)
Rows of the regions the files cover replace the base catalog's; every other row (other regions, serverless,
egress) is kept. GCP and Azure files carry no sizes: the types refreshed are those in
lib/cost/catalog/refresh/shapes.ts.`;
